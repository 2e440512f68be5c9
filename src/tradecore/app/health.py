"""Is the bot healthy? Each component judged on its own, from what the process knows now.

`judge` turns `HealthFacts` — gathered by whoever serves `/health` (the runner) from the
kernel, a database probe made for this very check, and the figures its event tee keeps —
into a status (200 or 503) and a body naming every component:

- database: the probe of this check answered (so 503 while it is down, 200 at the first check
  after it is back), with the writes and events still waiting for it;
- venue: no failure of the venue since its last good read (a failure is forgotten after
  `VENUE_GRACE` even without one), and its price stream not known to be down;
- signal stream: not known to be disconnected, and the loop that takes its signals alive;
- loops: every loop of the kernel running or finished on purpose; one that died is red;
- protection: the last protection pass left no position without a stop.

Nothing here calls the venue: a health probe must not spend the account's rate limit.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

VENUE_GRACE = timedelta(minutes=5)  # a venue failure not followed by a good read, this long
PROBE_SECONDS = 2.0  # a database that takes longer to answer the probe counts as down


@attrs.frozen(kw_only=True)
class HealthFacts:
    now: datetime
    mode: str
    venue: str
    running: bool
    started_at: datetime | None
    loops: Mapping[str, str]  # name -> "running", "finished" or "died"
    positions: int | None  # the database probe's answer; None: it did not answer
    writes_waiting: int = 0
    journal: Mapping[str, Any] = attrs.Factory(dict)
    venue_failure: datetime | None = None
    venue_read_ok: datetime | None = None  # the last good read of the venue
    marks_connected: bool | None = None
    stream: str = "none"  # "websocket", "replay" or "none"
    stream_connected: bool | None = None
    last_signal_at: datetime | None = None
    unprotected: int = 0
    last_protection_check: datetime | None = None
    unprotected_symbols: Sequence[str] = ()


async def probe(count: Callable[[], Awaitable[int]], seconds: float = PROBE_SECONDS) -> int | None:
    """`count()` (e.g. the open positions), or None when the database does not answer."""
    try:
        return await asyncio.wait_for(count(), seconds)
    except Exception:  # down, refusing, or too slow: the report says so
        return None


def judge(f: HealthFacts) -> tuple[int, dict[str, Any]]:
    database_ok = f.positions is not None
    venue_ok = _venue_ok(f) and f.marks_connected is not False
    died = sorted(name for name, state in f.loops.items() if state == "died")
    stream_ok = f.stream_connected is not False and "signals" not in died
    protected = f.unprotected == 0
    healthy = f.running and database_ok and venue_ok and stream_ok and protected and not died
    body = {
        "status": "ok" if healthy else "unhealthy",
        "mode": f.mode,
        "running": f.running,
        "database": {"ok": database_ok, "writes_waiting": f.writes_waiting, **f.journal},
        "venues": {
            f.venue: {
                "ok": venue_ok,
                "last_failure": _iso(f.venue_failure),
                "marks_connected": f.marks_connected,
            },
        },
        "signal_stream": {"kind": f.stream, "connected": f.stream_connected, "ok": stream_ok},
        "loops": dict(sorted(f.loops.items())),
        "loops_died": died,
        "last_signal": _iso(f.last_signal_at),
        "positions": f.positions,
        "unprotected": f.unprotected,
        "unprotected_symbols": list(f.unprotected_symbols),
        "last_protection_check": _iso(f.last_protection_check),
        "uptime_seconds": (f.now - f.started_at).total_seconds() if f.started_at else 0.0,
    }
    return (200 if healthy else 503), body


def _venue_ok(f: HealthFacts) -> bool:
    failure = f.venue_failure
    if failure is None:
        return True
    if f.venue_read_ok is not None and f.venue_read_ok > failure:
        return True  # the venue answered since
    return f.now - failure > VENUE_GRACE


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
