"""What an incident does to the venue: a fault to inject, or a person acting by hand."""

from decimal import ROUND_DOWN, ROUND_UP, Decimal

from tradecore.adapters.paper import Fault, FaultKind
from tradecore.domain.model import Side
from tradecore.ports.exchange import Accepted, RejectReason
from tradecore.testing import FakeVenue

from .invariants import tighter
from .world import Incident

_TRANSPORT = {
    "lost_request": FaultKind.TIMEOUT,
    "lost_answer": FaultKind.LOST_RESPONSE,
    "server_error_5xx": FaultKind.SERVER_ERROR,
    "rate_limit_429": FaultKind.RATE_LIMIT,
    "ban_418": FaultKind.RATE_LIMIT,
    "network_error": FaultKind.NETWORK_ERROR,
}


def act(venue: FakeVenue, incident: Incident, symbol: str) -> bool:
    """A person's action on the venue's website; True when the venue took it."""
    kind, fraction = incident.kind, incident.fraction
    mark = venue.mark(symbol)
    rules = venue.rules(symbol)
    held = venue.position(symbol)
    if kind == "open_by_hand":
        quantity = _quantity(Decimal(60) / mark, rules.step_size, rules.min_quantity, ROUND_UP)
        side = Side.LONG if fraction < Decimal("0.5") else Side.SHORT
        return isinstance(venue.open_by_hand(symbol, side, quantity), Accepted)
    if held is None:
        return False
    if kind == "close_by_hand":
        return isinstance(venue.close_by_hand(symbol), Accepted)
    if kind == "partly_close_by_hand":
        quantity = _quantity(held.quantity * fraction, rules.step_size, Decimal(0), ROUND_DOWN)
        if quantity <= 0 or quantity >= held.quantity:
            return False
        return isinstance(venue.partly_close_by_hand(symbol, quantity), Accepted)
    if kind == "add_take_profit":
        profit = Decimal(1) if held.side is Side.LONG else Decimal(-1)
        price = _tick(mark * (1 + profit * Decimal("0.02") * (1 + fraction)), rules.tick_size)
        return isinstance(venue.add_take_profit(symbol, price), Accepted)
    stops = [s.trigger_price for s in venue.stops(symbol) if s.trigger_price is not None]
    if not stops:
        return False
    if kind == "cancel_stop":
        return any(isinstance(o, Accepted) for o in venue.cancel_stop(symbol))
    best = stops[0]
    for trigger in stops[1:]:
        if tighter(held.side, trigger, best):
            best = trigger
    sign = Decimal(1) if held.side is Side.LONG else Decimal(-1)
    level: Decimal
    if kind == "move_stop_looser":
        level = best - sign * mark * Decimal("0.01") * (1 + fraction)
    else:  # tighter: part of the way from the stop to the mark
        level = best + (mark - best) * fraction
    level = _tick(level, rules.tick_size)
    if level <= 0 or level == best:
        return False
    return any(isinstance(o, Accepted) for o in venue.move_stop(symbol, level))


def _quantity(raw: Decimal, step: Decimal, minimum: Decimal, rounding: str) -> Decimal:
    steps = (raw / step).quantize(Decimal(1), rounding=rounding)
    return max(steps * step, minimum)


def _tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).quantize(Decimal(1)) * tick


def fault_of(incident: Incident) -> Fault:
    kind = incident.kind
    if kind == "partial_fill":
        return Fault(
            kind=FaultKind.PARTIAL_FILL,
            op=incident.op,
            symbol=incident.symbol,
            fill_ratio=incident.fraction,
            times=incident.times,
        )
    if kind.startswith("reject:"):
        return Fault(
            kind=FaultKind.REJECT,
            reason=RejectReason(kind.split(":", 1)[1]),
            op=incident.op,
            symbol=incident.symbol,
            times=incident.times,
        )
    return Fault(
        kind=_TRANSPORT[kind], op=incident.op, symbol=incident.symbol, times=incident.times
    )
