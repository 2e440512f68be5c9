"""The stop keeper: the single writer of every position's stop.

Every change to a stop — initial, trailing, protection, aged, removal on close — and every
market close of a position goes through the keeper, which serialises them per symbol (one
position per symbol: one asyncio lock each, shared with the zombie pass) and has its
`StopWriter` apply them the venue's safe way (see `stop_writer`). It lends its lock to
nobody.

Every decision is taken under the symbol's lock on a fresh read of the venue (issue 10,
story 1): the protection guard only names suspects; `ensure_protected` reads the symbol's
position and orders, asks the domain (`reconcile.protect`, `reconcile.judge_level`) what
is wrong and fixes it. "Unchanged" is answered only after the venue confirms it (story 2).
A restored stop is the last stop the bot set (story 3); a trailing move never loosens it.
A stop replacement a crash interrupted is finished by its client id (`resume`, story 8).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.orders import OrderRole, VenuePosition, client_order_id
from tradecore.domain.pnl import opened_after
from tradecore.domain.positions import (
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
)
from tradecore.domain.precision import MarketRules
from tradecore.domain.reconcile import (
    CancelOrder,
    ClearPositionStop,
    LevelVerdict,
    PlaceStop,
    ReconcileParams,
    ReplaceStop,
    Snapshot,
    StopLevelChanged,
    TakeOverStop,
    crossed,
    judge_level,
    leaves_unprotected,
    protect,
    standing_level,
)
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.exchange import (
    Exchange,
    ExchangeUnavailable,
)
from tradecore.ports.repositories import Store

from .commands import Settling
from .exit_writer import ExitResult, ExitWriter
from .fills import read_fills
from .recorder import Recorder
from .stop_writer import StopResult, StopWriter

__all__ = ["ExitResult", "KeeperSettings", "Protection", "StopKeeper", "StopResult"]

InitialStop = Callable[[Position], Awaitable[Decimal | None]]


@attrs.frozen(kw_only=True)
class Protection:
    """What `ensure_protected` found and did for one position."""

    unprotected: bool = False  # the venue held it without a stop when the keeper looked
    fixed: bool = False  # something was wrong and is put right
    failed: bool = False  # something was wrong and could not be put right
    busy: bool = False  # an operation is in flight on the symbol: left to it
    detail: str = ""
    # the journal's position, closed now: its stop filled and the venue's position on the
    # symbol was opened after that (a person's, by hand), to be adopted as theirs
    ended: Position | None = None

    @property
    def protected(self) -> bool:
        return not self.failed and (not self.unprotected or self.fixed)


@attrs.frozen(kw_only=True)
class KeeperSettings:
    attempts: int = 3
    retry_delay_seconds: float = 0.5
    lookups: int = 3

    @property
    def settling(self) -> Settling:
        return Settling(
            attempts=self.attempts,
            lookups=self.lookups,
            retry_delay_seconds=self.retry_delay_seconds,
        )


class StopKeeper:
    """Serialises and applies every stop change; records who owns each stop."""

    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        recorder: Recorder,
        clock: Clock,
        ids: IdGenerator,
        settings: KeeperSettings | None = None,
        rules: Mapping[str, MarketRules] | None = None,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._recorder = recorder
        self._clock = clock
        self._ids = ids
        self._settings = settings or KeeperSettings()
        self._locks: dict[str, asyncio.Lock] = {}
        # told when the journal took the venue's quantity and entry (the trailing stop follows)
        self.on_followed: Callable[[Position], Awaitable[None]] | None = None
        # told (after the symbol's lock is released) when `ensure_protected` closed the
        # journal's position because its stop filled: (closed row, reason); the row was
        # written CLOSED with its event
        self.on_closed: Callable[[Position, str], Awaitable[object]] | None = None
        self._writer = StopWriter(
            exchange, store, recorder, clock, ids, self._settings.settling, rules=rules
        )
        self._exits = ExitWriter(exchange, store, clock)

    def _lock(self, symbol: str) -> asyncio.Lock:
        return self._locks.setdefault(symbol, asyncio.Lock())

    async def apply(
        self,
        position: Position,
        price: Decimal | None,
        *,
        owner: StopOwner,
        reason: str,
        replacing: str | None = None,
    ) -> StopResult:
        """Set the position's stop to `price` (None removes it), as `owner`, for `reason`.

        `replacing` names a stop order to retire once the new stop stands (a stop of the wrong
        quantity found by the guard); by default it is the position's recorded stop.
        """
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            return await self._writer.apply(
                current, price, owner=owner, reason=reason, replacing=replacing
            )

    async def adopt_carried(self, position: Position, price: Decimal) -> StopResult:
        """Journal the stop the position's entry carried (at `price`, set on the position by
        the venue as the entry filled) as the bot's initial stop, method "carried"
        (`StopWriter.adopt_carried`). Not ok when the venue shows no such stop."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            return await self._writer.adopt_carried(current, price, owner=StopOwner.INITIAL)

    async def adopt_standing(self, position: Position, price: Decimal) -> StopResult | None:
        """An open whose stop the venue refused to the end: a full stop-loss standing on the
        venue tighter than `price` (the stop it wanted) protects the position already — an
        earlier position's stop the venue kept, a person's — and is journaled as its
        initial stop instead of a rollback closing a protected position at market (the
        simulator, binance seed 297). None (or a failed result: the venue could not be
        read) when none stands: the open rolls back. A looser one is not the risk the
        operator configured."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            return await self._writer.adopt_standing(current, price, owner=StopOwner.INITIAL)

    async def move_trailing(
        self, position_id: str, symbol: str, price: Decimal, *, reason: str
    ) -> StopResult | None:
        """The trailing stop's move to `price`: the position is read once, under the symbol's
        lock (the trailing service keeps no copy of it, so a move never waits for a read of
        its own); None when it is gone or no longer open on the venue."""
        async with self._lock(symbol):
            current = await self._store.positions.get(position_id)
            if current is None or not current.state.is_open_on_venue:
                return None
            return await self._writer.apply(current, price, owner=StopOwner.TRAILING, reason=reason)

    async def ensure_protected(
        self,
        position: Position,
        *,
        initial: InitialStop,
        heartbeats: Mapping[str, datetime] | None = None,
        params: ReconcileParams | None = None,
    ) -> Protection:
        """Make sure the venue holds one stop for the position's full quantity, at the level
        the bot last set — deciding on what the venue holds now, under the symbol's lock.

        `initial` prices a stop for a position the bot never set one for.

        Before a missing stop is put back (or the position closed at market, its level
        behind the mark) the keeper asks whether that stop filled: if it did and the venue's
        position was wholly bought after its fill, the bot's position was closed by its stop
        and the venue's is another one (a person's, opened by hand): the journal's row is
        closed ('stop … filled') and returned as `ended`, for the caller to adopt the new
        one, which is never touched here."""
        async with self._lock(position.symbol):
            found = await self._ensure_protected(position, initial, heartbeats, params)
        if found.ended is not None and self.on_closed is not None:
            await self.on_closed(found.ended, found.ended.close_reason or "")
        return found

    async def _ensure_protected(
        self,
        position: Position,
        initial: InitialStop,
        heartbeats: Mapping[str, datetime] | None,
        params: ReconcileParams | None,
    ) -> Protection:
        current = await self._store.positions.get(position.id) or position
        if current.state not in (PositionState.ACTIVE, PositionState.CLOSING):
            return Protection(busy=current.state.is_opening, detail=current.state.value)
        try:
            snapshot = await self._read(current, heartbeats or {})
            if any(op.kind is OperationKind.REPLACE_STOP for op in snapshot.operations):
                # Under this lock nothing of ours is in flight: a dead process's move.
                await self._writer.settle_interrupted(current.symbol)
                current = await self._store.positions.get(current.id) or current
                snapshot = await self._read(current, heartbeats or {})
        except ExchangeUnavailable as error:
            return Protection(failed=True, detail=f"the venue could not be read: {error}")
        held = [v for v in snapshot.venue_positions if v.side is current.side]
        if not held:
            return Protection(detail="the venue holds no position: the synchronizer's job")
        if any(op.in_flight for op in snapshot.operations):
            return Protection(busy=True, detail="an operation is in flight")
        unsure = ""  # why it is not known whether the missing stop filled
        if _stop_gone(current, snapshot) or _unnamed_stop_gone(current, snapshot):
            try:
                ended = await self._closed_by_stop(current, held[0])
            except ExchangeUnavailable as error:
                # Unread: the stop is put back all the same (it protects the venue's position
                # whoever's it is); only a close at market waits until the fill is known.
                unsure = f"whether its stop filled could not be read: {error}"
                ended = None
            if ended is not None:
                return await self._ended(current, ended)
        if held[0].quantity != current.quantity:  # the venue is the truth
            current = await self._follow_quantity(current, held[0])
            snapshot = attrs.evolve(snapshot, positions=(current,))
        actions = protect(snapshot, params or ReconcileParams())
        return await self._carry_out(current, snapshot, actions, initial, unsure=unsure)

    async def _closed_by_stop(self, position: Position, held: VenuePosition) -> str | None:
        """'stop … filled' when the position's recorded stop filled and the venue's position
        on its side was wholly traded after that fill (`domain.pnl.opened_after`: not the
        bot's); when the stop did not fill (cancelled: by a person, or by the venue with the
        position a person closed by hand), `closed_after_entry`'s answer. None when the
        stop is standing, or some of what the venue holds was held when it filled (a stop
        for part of it, a person's addition before it fired: the rest is still the bot's),
        or the account has not been flat since the entry. Raises
        ExchangeUnavailable when the order or the fills cannot be read, or do not show the
        stop's fill yet (the guard's next pass asks again; nothing is done meanwhile)."""
        if position.stop_order_id is None:
            return await self.closed_after_entry(position, held)
        order = await self._exchange.fetch_order(position.symbol, position.stop_order_id)
        if order is not None and order.is_open:
            return None  # still standing: the read that missed it was older
        if order is None or order.filled <= 0:
            # Cancelled (by a person, or by the venue with a position a person closed) or
            # never there: the fills tell whether the account went flat since the entry.
            return await self.closed_after_entry(position, held)
        fills = await read_fills(self._exchange, position)
        after = opened_after(fills, order.order_id, position.side, held.quantity)
        if after is None:
            raise ExchangeUnavailable(f"the fills do not list stop {order.order_id} yet")
        if not after:
            return None  # some of what the venue holds was held before the stop filled
        return f"stop {order.order_id} filled"

    async def closed_after_entry(self, position: Position, held: VenuePosition) -> str | None:
        """`_closed_by_stop` for a stop recorded without its order id (a stop the entry
        carried, journaled while the venue's stops could not be read, or not journaled yet
        when the process died: the resumed open asks too) or one that did not fill (a
        person closed the position and bought again by hand: the simulator, binance seed
        202): which order closed it is not asked, so the account's fills are walked back
        from what the venue holds to the bot's own entry (`domain.pnl.opened_after`):
        reaching flat after the entry's last fill, the position held now was wholly traded
        after the bot's was closed. None when the fills do not show the entry (an adopted
        position, a venue whose fills carry no client id and no entry row): nothing is
        known beyond the missing stop. Raises ExchangeUnavailable when the fills cannot be
        read."""
        entry = client_order_id(position.id, OrderRole.ENTRY)
        rows = await self._store.orders.for_position(position.id)
        entries = {o.order_id for o in rows if o.client_order_id == entry}
        fills = await read_fills(self._exchange, position)
        entries |= {f.order_id for f in fills if f.client_order_id == entry}
        last = max((f for f in fills if f.order_id in entries), key=lambda f: f.at, default=None)
        if last is None:
            return None
        if not opened_after(fills, last.order_id, position.side, held.quantity):
            return None
        return f"closed on the venue after entry {last.order_id}"

    async def _ended(self, position: Position, reason: str) -> Protection:
        """The journal's position was closed by its stop (which is gone from the venue with
        it): its row CLOSED, its stop fields cleared; the venue's position is left alone."""
        await self._exits.cancel_all(position)  # it would sell the person's position
        closed = position.advance(
            PositionState.CLOSED, closed_at=self._clock.now(), close_reason=reason
        )
        saved = await self._writer.saved(
            attrs.evolve(closed, stop_price=None, stop_order_id=None, stop_owner=None),
            self.closed_event(position, reason),
        )
        return Protection(
            unprotected=True,
            detail=f"{reason}: the venue's position was opened after it (not the bot's)",
            ended=saved,
        )

    async def settle_interrupted_close(self, operation: Operation) -> str:
        """A dead process's market close: its order journaled if the venue took it
        (`StopWriter.settle_interrupted_close`), under the symbol's lock."""
        async with self._lock(operation.symbol):
            return await self._writer.settle_interrupted_close(operation)

    def closed_event(
        self, position: Position, reason: str, *, order_id: str | None = None
    ) -> Event:
        """`position_closed` for `position`, to be stored with its CLOSED row."""
        return self._recorder.event(
            EventType.POSITION_CLOSED,
            position=position,
            order_id=order_id,
            data={"reason": reason, "quantity": position.quantity},
        )

    async def record_closed(
        self,
        position: Position,
        *,
        reason: str,
        phantom: str | None = None,
        order_id: str | None = None,
    ) -> Position | None:
        """The venue no longer holds `position`: its stop removed, the journal row CLOSED —
        under the symbol's lock on a fresh read, so two use cases noticing the same close
        (the synchronizer, the aged manager) record it once. None if it already was, or if
        the venue, read under the lock, still holds it or cannot be read (promise 4: the
        journal never calls a position the venue holds closed, nor strips its stop).

        The row is written CLOSED with its `position_closed` event — and, when none of the
        bot's orders closed it (`phantom`: why), `phantom_position_closed` first."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            if current.state not in (PositionState.ACTIVE, PositionState.CLOSING):
                return None
            try:
                held = await self._held(current)
            except ExchangeUnavailable:
                return None  # unread: not known to be closed; the next pass looks again
            if held is not None:
                return None  # the venue still holds it (a close that filled only part)
            if current.stop_price is not None:
                owner = current.stop_owner or StopOwner.PROTECTION
                result = await self._writer.apply(
                    current, None, owner=owner, reason="position closed"
                )
                current = result.position
            # its aged exit too: a venue may keep a reduce-only order when the position
            # goes flat, and it would sell the next position on the symbol (bybit seed 283)
            await self._exits.cancel_all(current)
            closed = current.advance(
                PositionState.CLOSED, closed_at=self._clock.now(), close_reason=reason
            )
            events = [self.closed_event(current, reason, order_id=order_id)]
            if phantom is not None:
                events.insert(
                    0,
                    self._recorder.event(
                        EventType.PHANTOM_POSITION_CLOSED,
                        position=current,
                        data={"detail": phantom},
                    ),
                )
            return await self._writer.saved(
                attrs.evolve(closed, stop_price=None, stop_order_id=None, stop_owner=None),
                *events,
            )

    async def correct_quantity(self, position: Position) -> Position | None:
        """Make the journal's quantity the venue's (the synchronizer found them apart), under
        the symbol's lock on a fresh read: a stop move writing the same row meanwhile is
        never overwritten nor made to fail. None if the venue holds no such position now, or
        the journal's row is no longer open (closed since the caller read it: the guard's
        keeper found its stop filled and a person's position after it — the review of the
        guard's concurrent repairs)."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            if not current.state.is_open_on_venue:
                return None
            try:
                held = [
                    v
                    for v in await self._exchange.fetch_positions()
                    if v.symbol == current.symbol and v.side is current.side
                ]
            except ExchangeUnavailable:
                return None
            if not held:
                return None
            if held[0].quantity == current.quantity:
                return current
            return await self._follow_quantity(current, held[0])

    async def _follow_quantity(self, position: Position, held: VenuePosition) -> Position:
        """The venue is the truth: its quantity, and its entry (an average once a person
        added to the position), become the journal's; the trailing stop follows them."""
        entry = held.entry_price if held.entry_price is not None else position.entry_price
        followed = await self._writer.saved(
            attrs.evolve(
                position,
                quantity=held.quantity,
                entry_price=entry,
                version=position.version + 1,
            ),
            self._recorder.event(
                EventType.QUANTITY_MISMATCH_DETECTED,
                position=position,
                data={"journal": position.quantity, "venue": held.quantity},
            ),
        )
        if self.on_followed is not None:
            await self.on_followed(followed)
        return followed

    async def cancel_orphan(self, symbol: str, order_id: str) -> tuple[bool, str]:
        """Cancel an order that belongs to no position (a zombie): (gone, what happened).

        A stop-loss is cancelled only if, read again under the symbol's lock, the venue
        holds no position it could protect: no other component removes a stop-loss."""
        async with self._lock(symbol):
            try:
                orders = await self._exchange.fetch_open_orders(symbol)
                held = [v for v in await self._exchange.fetch_positions() if v.symbol == symbol]
            except ExchangeUnavailable as error:
                return False, f"not cancelled: the venue could not be read ({error})"
            order = next((o for o in orders if o.order_id == order_id), None)
            if order is None:
                return True, "already gone"
            if order.is_stop and any(order.side is v.side.exit for v in held):
                return False, "not cancelled: it protects the position the venue holds"
            return await self._writer.cancel_by_id(symbol, order_id)

    async def take_over(self, position: Position, owner: StopOwner) -> Position:
        """Make `owner` the owner of the position's stop, as it stands."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            if not current.state.is_open_on_venue:
                return current  # closed since the caller read it: nothing to own
            return await self._writer.take_over(current, owner)

    async def resume(self) -> int:
        """After a restart: finish every stop replacement a crash interrupted (story 8)."""
        resumed = 0
        for operation in await self._store.operations.in_flight():
            if operation.kind is OperationKind.REPLACE_STOP and (
                operation.venue is self._exchange.venue
            ):
                async with self._lock(operation.symbol):
                    resumed += await self._writer.settle_interrupted(operation.symbol)
        return resumed

    # -- deciding on a fresh read -----------------------------------------------------------

    async def _read(self, position: Position, heartbeats: Mapping[str, datetime]) -> Snapshot:
        held = [v for v in await self._exchange.fetch_positions() if v.symbol == position.symbol]
        orders = await self._exchange.fetch_open_orders(position.symbol)
        operations = [
            op
            for op in await self._store.operations.in_flight()
            if op.venue is position.venue and op.symbol == position.symbol
        ]
        return Snapshot(
            venues=frozenset({position.venue}),
            positions=(position,),
            venue_positions=tuple(held),
            orders=tuple(orders),
            now=self._clock.now(),
            operations=tuple(operations),
            trailing_heartbeats=dict(heartbeats),
        )

    async def _carry_out(
        self,
        position: Position,
        snapshot: Snapshot,
        actions: tuple[object, ...],
        initial: InitialStop,
        *,
        unsure: str = "",
    ) -> Protection:
        mine = [a for a in actions if getattr(a, "position_id", None) == position.id]
        if not mine and (
            (position.stop_price is None and position.stop_order_id is None)
            or _stop_gone(position, snapshot)
        ):
            # A stop stands at the bot's level the journal does not name (an answer lost on
            # the way: a restore's, a dead process's): named now, or every later move would
            # cancel the gone one and meet the standing one (Binance -4130 for close-all).
            return await self._record_standing(position, snapshot)
        if not mine:
            return Protection(detail="protected")
        bare = next((a for a in mine if leaves_unprotected(a)), None)
        unprotected = bare is not None
        if isinstance(bare, PlaceStop):
            self._recorder.record(
                EventType.UNPROTECTED_POSITION_FOUND,
                position=position,
                data={"reason": "missing_stop", "detail": "no stop on the venue"},
            )
        elif isinstance(bare, ReplaceStop):  # a stop for part of it: the rest has none
            self._recorder.record(
                EventType.UNPROTECTED_POSITION_FOUND,
                position=position,
                data={"reason": "partial_stop", "detail": bare.detail},
            )
        ok, detail = True, ""
        current = position
        for action in mine:
            if isinstance(action, TakeOverStop):
                current = await self._writer.take_over(
                    current,
                    StopOwner.PROTECTION,
                    self._recorder.event(
                        EventType.PROTECTION_TOOK_OVER,
                        position=current,
                        data={
                            "from": position.stop_owner.value if position.stop_owner else None,
                            "detail": action.detail,
                        },
                    ),
                )
            elif isinstance(action, CancelOrder):
                gone = await self._writer.cancel(current, action.order_id, reason="duplicate stop")
                ok &= gone
            elif isinstance(action, ClearPositionStop):
                ok &= await self._writer.clear_attached(current, reason="duplicate attached stop")
        placing = next((a for a in mine if isinstance(a, PlaceStop | ReplaceStop)), None)
        level_changed = next((a for a in mine if isinstance(a, StopLevelChanged)), None)
        if placing is not None or level_changed is not None:
            current = await self._store.positions.get(current.id) or current
            restored, detail = await self._restore(
                current, snapshot, placing, initial, unsure=unsure
            )
            ok &= restored
        return Protection(unprotected=unprotected, fixed=ok, failed=not ok, detail=detail)

    async def _record_standing(self, position: Position, snapshot: Snapshot) -> Protection:
        """A stop stands that the journal never recorded: the process died between the venue
        taking it and the journal saving it (a Bybit position stop has no client id to find
        it by). It is the bot's level from now on, so a person loosening it later is put
        back (issue 10: the venue's stop never loosens against the last stop the bot set)."""
        [held] = [v for v in snapshot.venue_positions if v.side is position.side]
        level, order = standing_level(snapshot.orders, held, position)
        if level is None:
            return Protection(detail="protected")
        recorded = position.with_stop(
            price=level,
            order_id=order.order_id if order is not None else None,
            owner=position.stop_owner or StopOwner.PROTECTION,  # renamed, not taken over
        )
        await self._writer.saved(
            recorded,
            self._writer.stop_event(
                recorded,
                level,
                previous=position.stop_price,
                reason="standing stop recorded",
                method="adopted",
            ),
        )
        return Protection(fixed=True, detail="the stop standing is the bot's level now")

    async def _restore(
        self,
        position: Position,
        snapshot: Snapshot,
        placing: PlaceStop | ReplaceStop | None,
        initial: InitialStop,
        *,
        unsure: str = "",
    ) -> tuple[bool, str]:
        """Put the stop at the bot's level (story 3): a person's tighter stop becomes the
        bot's level; a missing or looser one is put back; past the mark, close instead —
        unless `unsure` says whether the missing stop filled could not be read: then the
        venue's position may be a person's, opened after the bot's stop closed the bot's,
        and nothing is closed until a later pass knows (the guard shows it unprotected)."""
        [held] = [v for v in snapshot.venue_positions if v.side is position.side]
        found = (
            None
            if isinstance(placing, PlaceStop)
            else standing_level(snapshot.orders, held, position)[0]
        )
        mark = held.mark_price
        if mark is None:
            try:
                mark = await self._exchange.fetch_mark_price(position.symbol)
            except ExchangeUnavailable:
                mark = None
        verdict = judge_level(position.side, position.stop_price, found, mark)
        replacing = placing.order_id if isinstance(placing, ReplaceStop) else None
        owner = StopOwner.PROTECTION  # the guard put it right: its stop now
        if isinstance(placing, ReplaceStop) and position.stop_owner is not None:
            owner = position.stop_owner  # only resized: whoever owned it still does
        if verdict is LevelVerdict.CLOSE and unsure:
            return False, f"the mark crossed the stop level; not closed at market: {unsure}"
        if verdict is LevelVerdict.CLOSE:
            return await self._close_crossed(position, held)
        if verdict is LevelVerdict.ADOPT and replacing is None:
            assert found is not None
            _, order = standing_level(snapshot.orders, held, position)
            adopted = position.with_stop(
                price=found,
                order_id=order.order_id if order is not None else position.stop_order_id,
                owner=owner,
            )
            await self._writer.saved(
                adopted,
                self._writer.stop_event(
                    adopted,
                    found,
                    previous=position.stop_price,
                    reason="manual change",
                    method="adopted",
                ),
            )
            return True, "a person's tighter stop is the bot's level now"
        price = position.stop_price if verdict is not LevelVerdict.ADOPT else found
        if verdict is LevelVerdict.KEEP and replacing is not None:
            price = found
        if price is None:
            price = await initial(position)
            if price is None:
                return False, "no stop price: no market rules or no entry price"
        if found is not None and replacing is None and verdict is LevelVerdict.RESTORE:
            _, order = standing_level(snapshot.orders, held, position)
            replacing = order.order_id if order is not None else None
        result = await self._writer.apply(
            position,
            price,
            owner=owner,
            reason="missing stop" if found is None else "stop moved by hand",
            replacing=replacing,
            verified=True,
        )
        if (
            not result.ok
            and result.would_trigger
            and verdict is LevelVerdict.RESTORE
            and price == position.stop_price
        ):
            # Refused: the mark crossed the bot's level while the command travelled (the
            # read showed it short of it). The same rule as above, in the same pass — not a
            # person's looser stop left standing until the next one (binance seed 1519).
            try:
                now = await self._exchange.fetch_mark_price(position.symbol)
            except ExchangeUnavailable:
                now = None
            if now is not None and crossed(position.side, price, now):
                return await self._close_crossed(result.position, held)
        return result.ok, result.detail

    async def _close_crossed(self, position: Position, held: VenuePosition) -> tuple[bool, str]:
        """The stop level is already behind the mark, so a stop there would fire at once:
        close at market instead. Fixed only once the venue is flat: a close that filled part
        leaves the rest bare, and the guard shows it unprotected and tries again."""
        cause = "the mark crossed the stop level"
        flat = await self._close(position, reason=cause)
        self._recorder.record(
            EventType.POSITION_ROLLBACK,
            position=position,
            severity=Severity.WARNING if flat else Severity.ERROR,
            data={"cause": cause, "closed": flat, "quantity": held.quantity},
        )
        if not flat:
            return False, "closed at market only in part: the rest is still bare"
        return True, "closed at market: the mark crossed the stop level"

    async def close_at_market(self, position: Position, *, reason: str) -> bool:
        """Close what the venue holds of the position, reduce-only at market, its exit orders
        cancelled first (the aged manager at its loss cap, an open's rollback): True only
        once the venue shows it flat. Otherwise (a close that filled part, an answer that
        never came) the rest keeps its stop, for its new quantity, at the bot's level, or
        gets one there. Whoever closed it records the close (`record_closed`)."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id) or position
            if await self._close(current, reason=reason):
                return True
            await self._protect_rest(current)
            return False

    async def _close(self, position: Position, *, reason: str) -> bool:
        """The one market close: the venue's quantity (not the journal's: a person may have
        added to it), reduce-only; True once the venue shows the position flat."""
        await self._exits.cancel_all(position)
        try:
            held = await self._held(position)
        except ExchangeUnavailable:
            return False  # unread: nothing sent; its stop still stands
        if held is None:
            return True
        accepted = await self._writer.market_close(position, held.quantity, reason=reason)
        left: Decimal | None = held.quantity
        for attempt in range(self._settings.lookups if accepted else 1):
            if attempt:
                await self._clock.sleep(self._settings.retry_delay_seconds * attempt)
            try:
                rest = await self._held(position)
            except ExchangeUnavailable:
                left = None
                continue
            if rest is None:
                return True
            left = rest.quantity
        if not accepted:
            return False  # refused or never answered: not flat, and the caller says so
        self._recorder.record(
            EventType.MARKET_CLOSE_INCOMPLETE,
            position=position,
            data={
                "reason": reason,
                "sent": held.quantity,
                "remaining": left,  # None: the venue could not be read after the close
                "stop_price": position.stop_price,
            },
        )
        return False

    async def _protect_rest(self, position: Position) -> None:
        """What a market close left open keeps a stop for its quantity at the bot's level
        (never looser than the journal's): the journal takes the venue's quantity, and a
        rest found bare, or with a stop for another quantity, gets one there (as the guard
        would; who owns the stop is left to the guard)."""
        if position.stop_price is None:
            return  # the bot never set a level (an open's rollback): the caller's to decide
        try:
            snapshot = await self._read(position, {})
        except ExchangeUnavailable:
            return  # the guard's next pass
        held = [v for v in snapshot.venue_positions if v.side is position.side]
        if not held or any(op.in_flight for op in snapshot.operations):
            return
        current = position
        if held[0].quantity != current.quantity:
            current = await self._follow_quantity(current, held[0])
            snapshot = attrs.evolve(snapshot, positions=(current,))
        placing = tuple(
            a
            for a in protect(snapshot)
            if isinstance(a, PlaceStop | ReplaceStop) and a.position_id == current.id
        )
        if placing:
            await self._carry_out(current, snapshot, placing, _unpriced)

    async def _held(self, position: Position) -> VenuePosition | None:
        """The venue's position on the symbol and side, None if flat; raises if unread."""
        return next(
            (
                v
                for v in await self._exchange.fetch_positions()
                if v.symbol == position.symbol and v.side is position.side and v.quantity > 0
            ),
            None,
        )

    async def keep_exit(self, position: Position, price: Decimal) -> ExitResult:
        """Keep exactly one reduce-only limit exit order for the position at `price` (the
        aged manager's target), under the symbol's lock — on the journal's row read under
        it: a position journaled closed since the aged pass read it (its exits cancelled
        then) gets none, which would sell whatever the symbol holds next."""
        async with self._lock(position.symbol):
            current = await self._store.positions.get(position.id)
            if current is None or current.state not in (
                PositionState.ACTIVE,
                PositionState.CLOSING,
            ):
                return ExitResult()
            return await self._exits.keep(current, price)


def _stop_gone(position: Position, snapshot: Snapshot) -> bool:
    """The journal records a stop order for the position that the venue no longer lists."""
    order_id = position.stop_order_id
    return order_id is not None and all(o.order_id != order_id for o in snapshot.orders)


def _unnamed_stop_gone(position: Position, snapshot: Snapshot) -> bool:
    """The journal records a stop level without its order (a stop the entry carried,
    journaled unread) and the venue shows no stop-loss for the position: attached or not."""
    if position.stop_order_id is not None or position.stop_price is None:
        return False
    held = [v for v in snapshot.venue_positions if v.side is position.side]
    if any(v.stop_price is not None for v in held):
        return False
    return not any(o.is_stop_loss and o.side is position.side.exit for o in snapshot.orders)


async def _unpriced(position: Position) -> Decimal | None:
    """No initial stop price: the rest of a closed position is kept at the bot's level."""
    return None
