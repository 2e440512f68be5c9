"""The journal alone rebuilds each position's stop history as the venue's books saw it.

Issue 12, item 5, as a property of the simulator, checked once quiescent: replaying a
position's stop events — `stop_loss_placed` / `stop_loss_replaced` (a new order, or an order
moved in place), `stop_loss_cancelled` (a cancel that took the order), `stop_loss_filled` —
gives, step by step and in order, what the venue's books (`Books.history`) hold for the same
orders: each placed with its trigger, moved, cancelled or filled — each order's own steps in
order, and the steps the bot made (placements, moves, its own cancels) in order across
orders; an end the venue made (a fill, a cancel with the position) is learnt when the bot
next asks, so it may be journaled later than it happened, never sooner. A journal that
writes an old stop's cancel before its replacement, records a fill as a cancellation, or
misses a move fails it (invariant `stop_history`).

A position whose life overlaps an excuse of its symbol (a fault, a person's action) or a
crash is not judged: a process that died between the venue's answer and its event journals
the order later, or by the guard's reading of it, by design; a person's orders are not the
bot's (the other invariants judge those). A database outage excuses nothing here.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.adapters.paper import Amendment, Fill, OrderClosed, OrderRecord
from tradecore.adapters.paper.books import Books
from tradecore.domain.events import Event, EventType

from .invariants import Excuse, Violation

STOP_HISTORY = "stop_history"

_PLACED = frozenset({EventType.STOP_LOSS_PLACED, EventType.STOP_LOSS_REPLACED})


@attrs.frozen
class Step:
    """One thing that happened to one stop order: placed, moved, cancelled or filled."""

    kind: str
    order_id: str
    trigger: Decimal | None = None

    def __str__(self) -> str:
        at = f" at {self.trigger}" if self.trigger is not None else ""
        return f"{self.kind} {self.order_id}{at}"


@attrs.frozen(kw_only=True)
class Journaled:
    """One position's stop history as its events tell it."""

    position_id: str
    symbol: str
    first: datetime
    last: datetime
    steps: tuple[Step, ...]


def from_journal(events: Iterable[Event]) -> list[Journaled]:
    """Every position's stop history, replayed from its events in the order they were
    emitted (the journal's `seq`)."""
    steps: dict[str, list[Step]] = defaultdict(list)
    placed: dict[str, set[str]] = defaultdict(set)
    ended: dict[str, set[str]] = defaultdict(set)
    where: dict[str, tuple[str, datetime, datetime]] = {}
    for event in events:
        pid, order_id = event.position_id, event.order_id
        if pid is None or event.symbol is None:
            continue
        symbol, first, _ = where.get(pid, (event.symbol, event.created_at, event.created_at))
        where[pid] = (symbol, first, event.created_at)
        if order_id is None:
            continue
        step = _step(event, order_id, placed[pid], ended[pid])
        if step is not None:
            steps[pid].append(step)
    return [
        Journaled(
            position_id=pid,
            symbol=symbol,
            first=first,
            last=last,
            steps=tuple(steps.get(pid, ())),
        )
        for pid, (symbol, first, last) in where.items()
    ]


def _step(event: Event, order_id: str, placed: set[str], ended: set[str]) -> Step | None:
    if event.type in _PLACED:
        kind = "moved" if order_id in placed else "placed"
        placed.add(order_id)
        return Step(kind, order_id, _decimal(event.data.get("price")))
    if order_id in ended:
        return None
    if event.type is EventType.STOP_LOSS_FILLED:
        ended.add(order_id)
        return Step("filled", order_id)
    if event.type is EventType.STOP_LOSS_CANCELLED and event.data.get("cancelled") is not False:
        ended.add(order_id)
        return Step("cancelled", order_id)
    return None


def from_books(books: Books, symbol: str, order_ids: set[str]) -> tuple[Step, ...]:
    """What the venue's books hold for `order_ids` on `symbol`, in the order it happened."""
    steps: list[Step] = []
    ended: set[str] = set()
    for entry in books.history(symbol):
        order_id = entry.order_id
        if order_id not in order_ids or order_id in ended:
            continue
        if isinstance(entry, OrderRecord):
            steps.append(Step("placed", order_id, entry.trigger_price))
        elif isinstance(entry, Amendment) and entry.new_trigger is not None:
            if entry.new_trigger != entry.old_trigger:
                steps.append(Step("moved", order_id, entry.new_trigger))
        elif isinstance(entry, Fill):
            ended.add(order_id)
            steps.append(Step("filled", order_id))
        elif isinstance(entry, OrderClosed):
            ended.add(order_id)
            steps.append(Step("cancelled", order_id))
    return tuple(steps)


def stop_history_problems(
    events: Sequence[Event],
    books: Books,
    excuses: Iterable[Excuse] = (),
    *,
    at: datetime,
) -> list[Violation]:
    """Each unexcused position whose journaled stop history differs from the books'."""
    excused = list(excuses)
    found = []
    for position in from_journal(events):
        if not position.steps:
            continue
        ids = {step.order_id for step in position.steps}
        # Its life as the venue saw it too: a position with no event since its stop was
        # placed (open to the end) still lived through a person's move of that stop and a
        # crash that cut the bot's answer off (bybit seed 692).
        seen = [e.at for e in books.history(position.symbol) if e.order_id in ids]
        span = attrs.evolve(position, last=max([position.last, *seen]))
        if _excused(span, excused):
            continue
        venue = _same_moves_once(from_books(books, position.symbol, ids))
        journal = _same_moves_once(position.steps)
        if not _same_history(journal, venue, ended_by_the_venue(books, position.symbol, ids)):
            found.append(
                Violation(
                    invariant=STOP_HISTORY,
                    at=at,
                    symbol=position.symbol,
                    detail=f"position {position.position_id}: the journal replays "
                    f"[{_show(journal)}], the venue's books hold [{_show(venue)}]",
                    since=position.first,
                )
            )
    return found


_ENDS = frozenset({"filled", "cancelled"})


def ended_by_the_venue(books: Books, symbol: str, order_ids: set[str]) -> frozenset[str]:
    """The orders whose end the venue made, not the bot's cancel: a fill, or a cancel by the
    venue (it went with its position) or by a person."""
    return frozenset(
        entry.order_id
        for entry in books.history(symbol)
        if entry.order_id in order_ids
        and (isinstance(entry, Fill) or (isinstance(entry, OrderClosed) and entry.origin != "api"))
    )


def _same_history(journal: Sequence[Step], venue: Sequence[Step], learnt: frozenset[str]) -> bool:
    """Each order's own steps in order, and every step the bot made — placed, moved, its own
    cancels — in order across orders. An end the venue made (`learnt`) is journaled when the
    bot next asks: later than it happened, never sooner — after every step the bot made
    before it (binance seeds 585: the new stop filled before the old one's cancel arrived;
    1097: the venue cancelled a stop with its position before trailing placed the next)."""
    orders = {step.order_id for step in (*journal, *venue)}
    for order_id in orders:
        if [s for s in journal if s.order_id == order_id] != [
            s for s in venue if s.order_id == order_id
        ]:
            return False

    def made(steps: Sequence[Step]) -> list[Step]:
        return [s for s in steps if not (s.kind in _ENDS and s.order_id in learnt)]

    if made(journal) != made(venue):
        return False
    # ... learnt later, never sooner: each such end after every step the bot made before it
    journaled_after, happened_after = _made_before(journal, learnt), _made_before(venue, learnt)
    return all(journaled_after.get(order_id, -1) >= n for order_id, n in happened_after.items())


def _made_before(steps: Sequence[Step], learnt: frozenset[str]) -> dict[str, int]:
    """For each end the venue made: how many of the bot's own steps came before it."""
    made, before = 0, {}
    for step in steps:
        if step.kind in _ENDS and step.order_id in learnt:
            before[step.order_id] = made
        else:
            made += 1
    return before


def _same_moves_once(steps: Sequence[Step]) -> tuple[Step, ...]:
    """A move to the level an order already has is no change on either side."""
    level: dict[str, Decimal | None] = {}
    kept = []
    for step in steps:
        if step.kind == "moved" and level.get(step.order_id) == step.trigger:
            continue
        if step.kind in ("placed", "moved"):
            level[step.order_id] = step.trigger
        kept.append(step)
    return tuple(kept)


# Excuses of every symbol that may leave the journal behind the venue: a process that died.
# A database outage or a refused account-wide read excuses nobody here: the journal spools
# in order through an outage, and a pass that could not read acts on nothing.
_JOURNAL_GAPS = frozenset({"crash", "restart"})


def _excused(position: Journaled, excuses: Sequence[Excuse]) -> bool:
    return any(
        (e.symbol == position.symbol or (e.symbol is None and e.cause in _JOURNAL_GAPS))
        and e.start <= position.last
        and (e.end is None or e.end >= position.first)
        for e in excuses
    )


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _show(steps: Sequence[Step]) -> str:
    return ", ".join(str(step) for step in steps)
