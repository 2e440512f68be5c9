"""Reconciliation (SPEC §5, §6, §8): what to do so the journal and the venue agree again.

Given the journal's positions, the venue's positions and open orders (stops included) and
the operations in flight, `reconcile` returns the actions that make every position known
and protected by exactly one stop for its full quantity, and no order orphaned. A "stop"
is a stop-loss (`Order.is_stop`): a take-profit, a venue trailing stop or any other
conditional kind is never protection, never a duplicate stop, and a person's one on a live
position is never a zombie (docs/venues.md, "Order kinds"). It decides;
the app carries the actions out and records an event for each.

Two rules hold by construction (and are property-tested):
- **Operations in flight are untouchable.** A symbol with an operation in flight (or a
  position still opening, whose own open operation is unfinished) gets no action at all,
  and no order of an in-flight operation is ever cancelled, wherever it sits.
- **A protected position keeps its stop.** Of several stops the one kept is the journal's
  own stop if it covers the position, else the venue-attached stop, else the stop of
  exactly the right quantity, else the tightest; only the others are cancelled. A stop of
  the wrong quantity is replaced (new stop first, old one cancelled after), never cancelled.

The protection guard does not fight the trailing stop: a position whose stop the trailing
stop owns is left alone while the trailing stop is healthy (its heartbeat is younger than
`trailing_silence`, 5 min) and a stop is in place; a silent trailing stop is taken over.
A position with no stop at all is always protected, whoever owned the stop.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import DomainError
from tradecore.domain.model import Side, Venue
from tradecore.domain.orders import (
    Order,
    OrderRole,
    OrderType,
    VenuePosition,
    operation_of,
    role_of,
)
from tradecore.domain.positions import Operation, Position, PositionState, StopOwner

Key = tuple[Venue, str]


class ReconcileReason(StrEnum):
    PHANTOM = "phantom"  # in the journal, not on the venue
    MISSING = "missing"  # on the venue, not in the journal: adopt and protect
    QUANTITY_MISMATCH = "quantity_mismatch"
    MISSING_STOP = "missing_stop"
    DUPLICATE_STOP = "duplicate_stop"
    WRONG_STOP_QUANTITY = "wrong_stop_quantity"
    TRAILING_SILENT = "trailing_silent"
    STOP_LEVEL_CHANGED = "stop_level_changed"
    ZOMBIE_REDUCE_ONLY = "zombie_reduce_only"
    ZOMBIE_CONDITIONAL = "zombie_conditional"  # TP/SL with no position
    ZOMBIE_CLOSE_ON_TRIGGER = "zombie_close_on_trigger"
    ZOMBIE_NO_POSITION = "zombie_no_position"  # a plain order on a symbol with no position
    ZOMBIE_WRONG_POSITION_IDX = "zombie_wrong_position_idx"
    ZOMBIE_WOULD_FLIP = "zombie_would_flip"  # opposite side, not reduce-only, > 1.5x
    # an exit order of ours for a position the journal no longer holds open
    ZOMBIE_ENDED_POSITION = "zombie_ended_position"


ZOMBIE_REASONS = frozenset(r for r in ReconcileReason if r.value.startswith("zombie_"))


@attrs.frozen(kw_only=True)
class ClosePhantom:
    """Mark the journal's position closed: the venue no longer holds it."""

    position_id: str
    venue: Venue
    symbol: str
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class AdoptPosition:
    """Record a position the venue holds and the journal does not (then protect it)."""

    position: VenuePosition
    reason: ReconcileReason
    detail: str

    @property
    def venue(self) -> Venue:
        return self.position.venue

    @property
    def symbol(self) -> str:
        return self.position.symbol


@attrs.frozen(kw_only=True)
class CorrectQuantity:
    """Set the journal's quantity to what the venue holds (the venue is the truth)."""

    position_id: str
    venue: Venue
    symbol: str
    journal_quantity: Decimal
    venue_quantity: Decimal
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class TakeOverStop:
    """Make the protection guard the owner of the position's stop."""

    position_id: str
    venue: Venue
    symbol: str
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class PlaceStop:
    """Place a stop for the full quantity; the app computes its price (SPEC §5).

    `position_id` is None for a position being adopted in the same pass.
    """

    venue: Venue
    symbol: str
    side: Side  # the position's side
    quantity: Decimal
    entry_price: Decimal
    position_idx: int
    position_id: str | None
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class ReplaceStop:
    """Replace a stop of the wrong quantity: create the new stop first, then cancel this one."""

    venue: Venue
    symbol: str
    order_id: str
    client_order_id: str | None
    side: Side
    quantity: Decimal
    trigger_price: Decimal | None
    position_idx: int
    position_id: str | None
    reason: ReconcileReason
    detail: str
    partial: bool = False  # the stop is for less than the position: the rest has none


@attrs.frozen(kw_only=True)
class CancelOrder:
    """Cancel an order: a duplicate stop or a zombie."""

    venue: Venue
    symbol: str
    order_id: str
    client_order_id: str | None
    position_id: str | None
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class ClearPositionStop:
    """Remove a venue-attached stop (Bybit trading-stop) that duplicates the kept stop order."""

    venue: Venue
    symbol: str
    position_id: str | None
    reason: ReconcileReason
    detail: str


@attrs.frozen(kw_only=True)
class StopLevelChanged:
    """The stop standing is not at the level the bot last set (someone moved it by hand)."""

    venue: Venue
    symbol: str
    position_id: str
    found: Decimal | None
    journal: Decimal
    reason: ReconcileReason
    detail: str


Action = (
    ClosePhantom
    | AdoptPosition
    | CorrectQuantity
    | TakeOverStop
    | PlaceStop
    | ReplaceStop
    | CancelOrder
    | ClearPositionStop
    | StopLevelChanged
)


@attrs.frozen(kw_only=True)
class ReconcileParams:
    trailing_silence: timedelta = timedelta(minutes=5)
    flip_ratio: Decimal = Decimal("1.5")


@attrs.frozen(kw_only=True)
class Snapshot:
    """Everything reconciliation looks at, fetched by the caller.

    `venues` are the venues whose positions and open orders (stops included) were fetched
    completely in this pass; nothing is concluded about any other venue, so a failed fetch
    never turns positions into phantoms.
    """

    venues: frozenset[Venue]
    positions: Sequence[Position]
    venue_positions: Sequence[VenuePosition]
    orders: Sequence[Order]
    now: datetime = attrs.field()
    operations: Sequence[Operation] = ()
    trailing_heartbeats: Mapping[str, datetime] = attrs.field(factory=dict)

    @now.validator
    def _aware(self, _: "attrs.Attribute[datetime]", value: datetime) -> None:
        if value.tzinfo is None:
            raise DomainError("reconciliation time must be timezone-aware (UTC)")


# --------------------------------------------------------------------------- what is busy


@attrs.frozen(kw_only=True)
class _Busy:
    keys: frozenset[Key]
    position_ids: frozenset[str]
    operation_ids: frozenset[str]
    client_ids: frozenset[str]

    def order(self, order: Order) -> bool:
        cid = order.client_order_id
        if (order.venue, order.symbol) in self.keys or (cid and cid in self.client_ids):
            return True
        root = operation_of(cid)
        return root is not None and (root in self.operation_ids or root in self.position_ids)


def _busy(snapshot: Snapshot) -> _Busy:
    flying = [op for op in snapshot.operations if op.in_flight]
    # A position still opening is the subject of its own open operation (same id).
    opening = [p for p in snapshot.positions if p.state.is_opening]
    position_ids = {op.position_id for op in flying if op.position_id} | {p.id for p in opening}
    keys = {(op.venue, op.symbol) for op in flying}
    keys |= {(p.venue, p.symbol) for p in snapshot.positions if p.id in position_ids}
    return _Busy(
        keys=frozenset(keys),
        position_ids=frozenset(position_ids),
        operation_ids=frozenset({op.id for op in flying} | {p.id for p in opening}),
        client_ids=frozenset(cid for op in flying for cid in op.client_order_ids),
    )


# ------------------------------------------------------------------------------- grouping

_ESTABLISHED = (PositionState.ACTIVE, PositionState.CLOSING)


def _journal_by_key(snapshot: Snapshot) -> dict[Key, list[Position]]:
    grouped: dict[Key, list[Position]] = defaultdict(list)
    for position in snapshot.positions:
        if position.venue in snapshot.venues and not position.state.is_terminal:
            grouped[(position.venue, position.symbol)].append(position)
    for positions in grouped.values():
        positions.sort(key=lambda p: (p.created_at, p.id), reverse=True)  # newest first
    return grouped


def _venue_by_key(snapshot: Snapshot) -> dict[Key, list[VenuePosition]]:
    grouped: dict[Key, list[VenuePosition]] = defaultdict(list)
    for position in snapshot.venue_positions:
        if position.venue in snapshot.venues and position.quantity > 0:
            grouped[(position.venue, position.symbol)].append(position)
    return grouped


def _orders_by_key(snapshot: Snapshot, busy: _Busy) -> dict[Key, list[Order]]:
    grouped: dict[Key, list[Order]] = defaultdict(list)
    for order in snapshot.orders:
        if order.venue in snapshot.venues and order.is_open and not busy.order(order):
            grouped[(order.venue, order.symbol)].append(order)
    return grouped


def _where(key: Key) -> str:
    return f"{key[1]} on {key[0].value}"


# ---------------------------------------------------------------------------- synchronize


def _phantom(position: Position, detail: str) -> ClosePhantom:
    return ClosePhantom(
        position_id=position.id,
        venue=position.venue,
        symbol=position.symbol,
        reason=ReconcileReason.PHANTOM,
        detail=detail,
    )


def _adopt(position: VenuePosition, detail: str) -> AdoptPosition:
    return AdoptPosition(position=position, reason=ReconcileReason.MISSING, detail=detail)


def _sync_key(key: Key, journal: list[Position], held: list[VenuePosition]) -> list[Action]:
    established = [p for p in journal if p.state in _ESTABLISHED]
    if not held:
        return [_phantom(p, f"{_where(key)} holds no position") for p in established]
    if not journal:
        return [_adopt(v, f"{_where(key)} holds a {v.side.value} the journal lacks") for v in held]
    if not established:  # still opening: recovery's business, and busy anyway
        return []
    kept, *extra = established
    actions: list[Action] = [_phantom(p, f"second record of {_where(key)}") for p in extra]
    venue = next((v for v in held if v.side is kept.side), None)
    if venue is None:
        actions.append(_phantom(kept, f"{_where(key)} holds a {held[0].side.value} now"))
        return actions + [_adopt(v, f"{_where(key)} flipped to {v.side.value}") for v in held]
    if venue.quantity != kept.quantity:
        actions.append(
            CorrectQuantity(
                position_id=kept.id,
                venue=kept.venue,
                symbol=kept.symbol,
                journal_quantity=kept.quantity,
                venue_quantity=venue.quantity,
                reason=ReconcileReason.QUANTITY_MISMATCH,
                detail=f"journal {kept.quantity}, venue {venue.quantity}",
            )
        )
    return actions


def synchronize(snapshot: Snapshot) -> tuple[Action, ...]:
    """SPEC §8: phantoms closed, missing positions adopted, quantities corrected.

    The symbols with a position to adopt come first: an adopted position is bare until its
    stop is placed, while a phantom's close is bookkeeping (fills, fees and PnL read one by
    one). Within a symbol the order stands (a flip: the old side closed, then the new one
    adopted)."""
    busy = _busy(snapshot)
    journal, venue = _journal_by_key(snapshot), _venue_by_key(snapshot)
    by_key = [
        _sync_key(key, journal.get(key, []), venue.get(key, []))
        for key in sorted(journal.keys() | venue.keys())
        if key not in busy.keys
    ]
    by_key.sort(key=lambda actions: not any(isinstance(a, AdoptPosition) for a in actions))
    return tuple(action for actions in by_key for action in actions)


# ------------------------------------------------------------------------------- protect


def _guards(order: Order, held: VenuePosition) -> bool:
    """A stop order that closes (part of) `held` when it triggers."""
    return (
        order.is_stop_loss
        and order.side is held.side.exit
        and order.position_idx in (0, held.position_idx)
    )


def _exact(order: Order, held: VenuePosition) -> bool:
    return (
        order.close_position
        or order.type is OrderType.POSITION_STOP
        or (order.remaining == held.quantity)
    )


def _covers(order: Order, held: VenuePosition) -> bool:
    return _exact(order, held) or order.remaining >= held.quantity


def _tightness(order: Order, held: VenuePosition) -> Decimal:
    # Smaller is tighter: the highest trigger for a long, the lowest for a short.
    if order.trigger_price is None:
        return Decimal("Infinity")
    return -order.trigger_price if held.side is Side.LONG else order.trigger_price


def _keeper(stops: list[Order], held: VenuePosition, owner: Position | None) -> Order | None:
    """The stop order to keep, or None when the venue-attached stop is the one kept."""
    recorded = owner.stop_order_id if owner else None
    for stop in stops:
        if stop.order_id == recorded and _covers(stop, held):
            return stop
    if held.stop_price is not None:
        return None
    return min(
        stops,
        key=lambda o: (not _exact(o, held), not _covers(o, held), _tightness(o, held), o.order_id),
    )


def _owner(journal: list[Position], held: VenuePosition) -> Position | None:
    return next((p for p in journal if p.side is held.side), None)


def _trailing_healthy(owner: Position | None, snapshot: Snapshot, params: ReconcileParams) -> bool:
    if owner is None or owner.stop_owner is not StopOwner.TRAILING:
        return False
    beat = snapshot.trailing_heartbeats.get(owner.id)
    return beat is not None and snapshot.now - beat < params.trailing_silence


def _take_over(owner: Position, reason: ReconcileReason, detail: str) -> TakeOverStop:
    return TakeOverStop(
        position_id=owner.id,
        venue=owner.venue,
        symbol=owner.symbol,
        reason=reason,
        detail=detail,
    )


def _place(held: VenuePosition, owner: Position | None) -> PlaceStop:
    return PlaceStop(
        venue=held.venue,
        symbol=held.symbol,
        side=held.side,
        quantity=held.quantity,
        entry_price=held.entry_price,
        position_idx=held.position_idx,
        position_id=owner.id if owner else None,
        reason=ReconcileReason.MISSING_STOP,
        detail=f"{held.side.value} {held.quantity} {held.symbol} has no stop on the venue",
    )


def _replace(stop: Order, held: VenuePosition, owner: Position | None) -> ReplaceStop:
    return ReplaceStop(
        venue=held.venue,
        symbol=held.symbol,
        order_id=stop.order_id,
        client_order_id=stop.client_order_id,
        side=held.side,
        quantity=held.quantity,
        trigger_price=stop.trigger_price,
        position_idx=held.position_idx,
        position_id=owner.id if owner else None,
        reason=ReconcileReason.WRONG_STOP_QUANTITY,
        detail=f"stop {stop.order_id} is for {stop.remaining}, the position is {held.quantity}",
        partial=not _covers(stop, held),
    )


def _cancel(order: Order, position_id: str | None, reason: ReconcileReason, detail: str) -> Action:
    return CancelOrder(
        venue=order.venue,
        symbol=order.symbol,
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        position_id=position_id,
        reason=reason,
        detail=detail,
    )


def _fix_stops(stops: list[Order], held: VenuePosition, owner: Position | None) -> list[Action]:
    keeper = _keeper(stops, held, owner)
    owner_id = owner.id if owner else None
    actions: list[Action] = []
    if keeper is not None and not _exact(keeper, held):
        actions.append(_replace(keeper, held, owner))
    kept = "the attached stop" if keeper is None else f"stop {keeper.order_id}"
    for stop in stops:
        if stop is not keeper:
            detail = f"{_where((held.venue, held.symbol))} already has {kept}"
            actions.append(_cancel(stop, owner_id, ReconcileReason.DUPLICATE_STOP, detail))
    if keeper is not None and held.stop_price is not None:
        actions.append(
            ClearPositionStop(
                venue=held.venue,
                symbol=held.symbol,
                position_id=owner_id,
                reason=ReconcileReason.DUPLICATE_STOP,
                detail=f"{kept} is kept; the attached stop at {held.stop_price} duplicates it",
            )
        )
    return actions


def _protect_one(
    held: VenuePosition,
    owner: Position | None,
    orders: list[Order],
    snapshot: Snapshot,
    params: ReconcileParams,
) -> list[Action]:
    stops = sorted((o for o in orders if _guards(o, held)), key=lambda o: o.order_id)
    if held.stop_price is not None:
        # A venue that lists its position-attached stop as an order too (Bybit does) is
        # describing one stop twice: `held.stop_price` stands for it.
        stops = [o for o in stops if o.type is not OrderType.POSITION_STOP]
    trailing = owner is not None and owner.stop_owner is StopOwner.TRAILING
    if not stops and held.stop_price is None:
        actions: list[Action] = []
        if owner is not None and trailing:
            detail = "the trailing stop left the position without a stop"
            actions.append(_take_over(owner, ReconcileReason.MISSING_STOP, detail))
        return [*actions, _place(held, owner)]
    prefix: list[Action] = []
    level, _ = standing_level(stops, held, owner)
    if owner is not None and owner.stop_price is not None and level != owner.stop_price:
        prefix.append(
            StopLevelChanged(
                venue=held.venue,
                symbol=held.symbol,
                position_id=owner.id,
                found=level,
                journal=owner.stop_price,
                reason=ReconcileReason.STOP_LEVEL_CHANGED,
                detail=f"the stop stands at {level}, the bot set {owner.stop_price}",
            )
        )
    # A healthy trailing stop keeps its stop (no take-over), but extras and a wrong quantity
    # are fixed all the same: the keeper decides under the symbol's lock, so a fix can no
    # longer race the trailing move it used to be kept away from.
    if owner is not None and trailing and not _trailing_healthy(owner, snapshot, params):
        detail = f"no trailing heartbeat for {params.trailing_silence}"
        prefix.append(_take_over(owner, ReconcileReason.TRAILING_SILENT, detail))
    return prefix + _fix_stops(stops, held, owner)


def protect(snapshot: Snapshot, params: ReconcileParams | None = None) -> tuple[Action, ...]:
    """SPEC §5: each position has exactly one stop for its full quantity."""
    settings = params or ReconcileParams()
    busy = _busy(snapshot)
    journal, venue = _journal_by_key(snapshot), _venue_by_key(snapshot)
    orders = _orders_by_key(snapshot, busy)
    actions: list[Action] = []
    for key in sorted(venue.keys() - busy.keys):
        for held in venue[key]:
            owner = _owner(journal.get(key, []), held)
            actions += _protect_one(held, owner, orders.get(key, []), snapshot, settings)
    return tuple(actions)


def bare_in_flight(snapshot: Snapshot) -> tuple[VenuePosition, ...]:
    """Positions `protect` leaves to the operation in flight on their symbol that the venue
    holds without any stop: unprotected all the same, so a pass counts them (issue 10: while
    a position has no stop, the guard's events count it) though it acts only on the rest."""
    busy = _busy(snapshot)
    venue = _venue_by_key(snapshot)
    bare = []
    for key in sorted(venue.keys() & busy.keys):
        for held in venue[key]:
            guarded = any(
                o.is_open and o.venue is held.venue and o.symbol == held.symbol and _guards(o, held)
                for o in snapshot.orders
            )
            if held.stop_price is None and not guarded:
                bare.append(held)
    return tuple(bare)


# -------------------------------------------------------------------------------- zombies


def _orphan_reason(order: Order) -> ReconcileReason:
    if order.is_conditional_exit:  # a take-profit, trailing stop or other kind: no position
        return ReconcileReason.ZOMBIE_CONDITIONAL
    if order.reduce_only:
        return ReconcileReason.ZOMBIE_REDUCE_ONLY
    if order.is_stop or order.trigger_price is not None:
        return ReconcileReason.ZOMBIE_CONDITIONAL
    if order.close_position:
        return ReconcileReason.ZOMBIE_CLOSE_ON_TRIGGER
    return ReconcileReason.ZOMBIE_NO_POSITION


def _zombie_reason(
    order: Order,
    held: list[VenuePosition],
    params: ReconcileParams,
    open_ids: frozenset[str] = frozenset(),
) -> tuple[ReconcileReason, str] | None:
    """`open_ids`: the ids of the positions the journal holds open on the order's symbol."""
    if not held:
        return _orphan_reason(order), f"{_where((order.venue, order.symbol))} holds no position"
    matching = [v for v in held if order.position_idx in (0, v.position_idx)]
    if not matching:
        return ReconcileReason.ZOMBIE_WRONG_POSITION_IDX, f"positionIdx {order.position_idx}"
    ended = operation_of(order.client_order_id)  # an exit's client id names its position
    exit_limit = order.type is OrderType.LIMIT and role_of(order.client_order_id) is OrderRole.EXIT
    if exit_limit and ended not in open_ids:
        # An earlier position's exit (an aged limit the venue kept when a stop closed it)
        # would close whatever the symbol holds now at that position's price.
        return ReconcileReason.ZOMBIE_ENDED_POSITION, f"the exit of position {ended}, not open"
    if order.is_conditional_exit and role_of(order.client_order_id) is OrderRole.FOREIGN:
        return None  # a person's take-profit or trailing stop on a live position is theirs
    position = matching[0]
    limit = params.flip_ratio * position.quantity
    if not order.only_closes and order.side is position.side.exit and order.remaining > limit:
        detail = f"{order.side.value} {order.remaining} would flip a {position.quantity} position"
        return ReconcileReason.ZOMBIE_WOULD_FLIP, detail
    return None


def find_zombies(snapshot: Snapshot, params: ReconcileParams | None = None) -> tuple[Action, ...]:
    """SPEC §6: orders that protect or belong to nothing, and orders that would flip one."""
    settings = params or ReconcileParams()
    busy = _busy(snapshot)
    journal, venue = _journal_by_key(snapshot), _venue_by_key(snapshot)
    actions: list[Action] = []
    for key, orders in sorted(_orders_by_key(snapshot, busy).items()):
        held = venue.get(key, [])
        owner = journal[key][0].id if journal.get(key) else None
        open_ids = frozenset(p.id for p in journal.get(key, []))
        for order in sorted(orders, key=lambda o: o.order_id):
            found = _zombie_reason(order, held, settings, open_ids)
            if found is not None:
                actions.append(_cancel(order, owner, *found))
    return tuple(actions)


# ------------------------------------------------------------------------------ together


def reconcile(snapshot: Snapshot, params: ReconcileParams | None = None) -> tuple[Action, ...]:
    """Synchronize, protect, then clear zombies: every action with its reason."""
    return synchronize(snapshot) + protect(snapshot, params) + find_zombies(snapshot, params)


def leaves_unprotected(action: object) -> bool:
    """Whether `action` found a position (or part of it) without a stop: none at all, or
    one for less than its quantity (issue 10: one stop-loss *for its full quantity*)."""
    return isinstance(action, PlaceStop) or (isinstance(action, ReplaceStop) and action.partial)


def unprotected_count(actions: Iterable[Action]) -> int:
    """How many positions this pass found without a full stop (alert above 5, SPEC §5)."""
    return sum(1 for action in actions if leaves_unprotected(action))


# ------------------------------------------------------------------------- the stop level


class LevelVerdict(StrEnum):
    """What to do about the level of the stop found on the venue, against the bot's own."""

    KEEP = "keep"  # the venue's stop is at the bot's level
    ADOPT = "adopt"  # a person tightened it: their level becomes the bot's
    RESTORE = "restore"  # missing or loosened: put back at the bot's level
    CLOSE = "close"  # missing or loosened and the mark has crossed the bot's level


def crossed(side: Side, level: Decimal, mark: Decimal) -> bool:
    """The mark is at or beyond a stop at `level`: such a stop would fire at once."""
    return mark <= level if side is Side.LONG else mark >= level


def tighter(side: Side, a: Decimal, b: Decimal) -> bool:
    """`a` is a tighter stop than `b` (closer to the mark on the losing side)."""
    return a > b if side is Side.LONG else a < b


def judge_level(
    side: Side, bot: Decimal | None, found: Decimal | None, mark: Decimal | None
) -> LevelVerdict:
    """The rule of issue 10: the venue's stop never loosens against the last stop the bot set.

    A person's tighter stop becomes the bot's level; a looser or missing one is put back at
    the bot's level, unless the mark has already crossed it — then the position is closed.
    Without a level of its own (never set one) the bot keeps what stands."""
    if bot is None:
        return LevelVerdict.KEEP if found is not None else LevelVerdict.RESTORE
    if found is not None and found == bot:
        return LevelVerdict.KEEP
    if found is not None and tighter(side, found, bot):
        return LevelVerdict.ADOPT
    if mark is not None and crossed(side, bot, mark):
        return LevelVerdict.CLOSE
    return LevelVerdict.RESTORE


def standing_level(
    stops: Sequence[Order], held: VenuePosition, owner: Position | None
) -> tuple[Decimal | None, Order | None]:
    """The level of the stop reconciliation keeps for `held`, and its order (None: attached)."""
    guarding = sorted((o for o in stops if _guards(o, held)), key=lambda o: o.order_id)
    if held.stop_price is not None:
        guarding = [o for o in guarding if o.type is not OrderType.POSITION_STOP]
    if not guarding:
        return held.stop_price, None
    kept = _keeper(guarding, held, owner)
    if kept is None:
        return held.stop_price, None
    return kept.trigger_price, kept
