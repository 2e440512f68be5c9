"""How long to wait before trying again what can heal on its own: a venue or a database
unreachable at start-up, a port still held. Doubling from one second, capped at 30 s, so an
outage of an hour costs ~120 attempts and a blip of a second costs one."""

FIRST_SECONDS = 1.0
CAP_SECONDS = 30.0


def backoff_seconds(
    attempt: int, *, first: float = FIRST_SECONDS, cap: float = CAP_SECONDS
) -> float:
    """The wait after failed attempt number `attempt` (1, 2, …): 1, 2, 4, 8, 16, 30, 30 … s."""
    return min(cap, first * 2.0 ** min(max(attempt, 1) - 1, 30))
