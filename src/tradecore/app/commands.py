"""One way to turn a venue command's answer into accepted, rejected or unknown.

Every use case that sends an order (the stop keeper, the open, the aged manager) settles the
answer here, so a new rejection code is handled once:

- `Accepted` is done.
- `Unknown` (the answer was lost) is resolved by looking the order up (by its client id, or
  by what the venue now holds), never by sending blind; a look-up that finds nothing lets
  the command be sent again — with the *same* client id, so the venue itself refuses a
  second order (not for a market order: see `settle`'s `resend_unknown`).
- "Already done" answers mean an earlier attempt worked: Binance -4116 and Bybit 110072
  (this client id was already used, `DUPLICATE_CLIENT_ID`), Bybit 34040 (the stop is
  already exactly this, `NOT_MODIFIED`). They are looked up like `Unknown` and taken as
  `Accepted`; never as a failure (issue 10, story 7). Codes: Binance USDⓈ-M error codes
  (-4116 "ClientOrderId is duplicated"), Bybit v5 error codes (110072 "OrderLinkedID is
  duplicate", 34040 "not modified"); their mapping lives in `adapters/ccxt/errors.py`.
- A retryable rejection (rate limit, 5xx, network) is retried after a growing pause.
"""

from collections.abc import Awaitable, Callable

import attrs

from tradecore.domain.orders import Order
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import (
    Accepted,
    ExchangeUnavailable,
    Outcome,
    Rejected,
    RejectReason,
    Unknown,
)

ALREADY_DONE = frozenset({RejectReason.DUPLICATE_CLIENT_ID, RejectReason.NOT_MODIFIED})

Send = Callable[[], Awaitable[Outcome]]
Lookup = Callable[[], Awaitable[Order | None]]


@attrs.frozen(kw_only=True)
class Settling:
    attempts: int = 3
    lookups: int = 3
    retry_delay_seconds: float = 0.5


def already_done(outcome: Outcome) -> bool:
    """The venue says an earlier attempt of this very command worked."""
    return isinstance(outcome, Rejected) and outcome.reason in ALREADY_DONE


async def settle(
    send: Send,
    lookup: Lookup,
    *,
    clock: Clock,
    settling: Settling,
    on_retry: Callable[[Rejected, int], None] | None = None,
    resend_unknown: bool = True,
) -> Outcome:
    """Send up to `attempts` times and settle the answer (see the module docstring).

    `resend_unknown=False` for an order that may not stay open (a market order): Binance
    keeps a client id unique only among open orders, so a filled market order sent again
    under the same id would fill twice; an unresolved Unknown is returned as Unknown."""
    outcome: Outcome = Rejected(reason=RejectReason.OTHER, message="not sent")
    for attempt in range(settling.attempts):
        if attempt:
            await clock.sleep(settling.retry_delay_seconds * attempt)
        outcome = await send()
        if isinstance(outcome, Accepted):
            return outcome
        if isinstance(outcome, Unknown) or already_done(outcome):
            found = await look_up(lookup, clock=clock, settling=settling)
            if found is not None:
                return Accepted(order=found)
            if not resend_unknown:
                return outcome if isinstance(outcome, Unknown) else _unresolved(outcome)
            continue
        if not outcome.retryable:
            return outcome
        if on_retry is not None:
            on_retry(outcome, attempt)
    return _unresolved(outcome) if already_done(outcome) else outcome


def _unresolved(outcome: Outcome) -> Unknown:
    return Unknown(message=f"the venue says it is done, but it was not found: {outcome}")


async def look_up(lookup: Lookup, *, clock: Clock, settling: Settling) -> Order | None:
    """Ask up to `lookups` times; a venue that cannot answer is asked again after a pause."""
    for attempt in range(settling.lookups):
        if attempt:
            await clock.sleep(settling.retry_delay_seconds * attempt)
        try:
            return await lookup()
        except ExchangeUnavailable:
            continue
    return None
