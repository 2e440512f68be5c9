"""Protection guard (SPEC §5): every position has exactly one stop for its full quantity.

Each pass reads the journal and the venue once (see `snapshot`) only to find *suspects*:
positions the domain (`reconcile.protect`) says are wrong. It decides nothing about their
stops itself. For each suspect it asks the stop keeper — the only stop writer —
`ensure_protected`, and the keeper reads that symbol again under its lock and decides on
what the venue holds then (issue 10, story 1): a stale read can cost an extra look, never a
wrong cancel. Positions with an operation in flight (an open, a stop replacement) are left
to it by the domain's rule. The pass counts what the keeper found, not what it guessed.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger

from tradecore.domain.events import EventType, Severity
from tradecore.domain.orders import VenuePosition
from tradecore.domain.positions import Position, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.domain.reconcile import (
    PlaceStop,
    ReconcileParams,
    bare_in_flight,
    leaves_unprotected,
    protect,
)
from tradecore.domain.stops import StopParams, initial_stop, inside_liquidation
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.repositories import Store

from .recorder import Recorder
from .snapshot import Heartbeats, take_snapshot
from .stop_keeper import StopKeeper


@attrs.frozen(kw_only=True)
class ProtectionSettings:
    interval_seconds: float = 60
    alert_threshold: int = 5  # alert when more positions than this are unprotected in a pass


@attrs.frozen(kw_only=True)
class ProtectionReport:
    checked: int
    unprotected: int
    fixed: int
    failed: int
    skipped: bool = False  # the venue could not be read


@attrs.frozen(kw_only=True)
class ProtectionView:
    """What the application reports as unprotected: the positions the last protection pass
    left without a stop. `/health`, the Prometheus gauge and the guard's event all show
    this one view (the runner serves it, it computes nothing); the simulator compares it
    with the venue after every pass."""

    read_at: datetime | None = None  # when the last pass began reading the venue
    checked_at: datetime | None = None  # when it ended (None: no pass has ended yet)
    symbols: frozenset[str] = frozenset()  # the symbols it left bare

    @property
    def unprotected(self) -> int:
        return len(self.symbols)


@attrs.define(kw_only=True)
class _Tally:
    """What one protection pass found so far, as its suspects are looked after."""

    journal: dict[str, Position]
    suspects: dict[str, Position]
    beats: Mapping[str, datetime] | None
    seen_bare: set[str | None]
    adopted: dict[str, Position] = attrs.Factory(dict)
    unknown: set[str] = attrs.Factory(set)  # persons' positions not adopted: their keys
    reopened: dict[str, str] = attrs.Factory(dict)  # ... of them after a fill: their symbols
    unprotected: int = 0
    fixed: int = 0
    failed: int = 0


class ProtectionGuard:
    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        rules: Mapping[str, MarketRules],
        *,
        heartbeats: Heartbeats | None = None,
        stops: StopParams | None = None,
        params: ReconcileParams | None = None,
        settings: ProtectionSettings | None = None,
        alerter: Alerter | None = None,
        on_protected: Callable[[Position], Awaitable[None]] | None = None,
        on_held: Callable[[Position, datetime], Awaitable[None]] | None = None,
        adopt: Callable[[], Awaitable[int]] | None = None,
        resolve_opens: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._resolve_opens = resolve_opens
        self._exchange = exchange
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._rules = rules
        self._heartbeats = heartbeats
        self._stops = stops or StopParams()
        self._params = params or ReconcileParams()
        self.settings = settings or ProtectionSettings()
        self._alerter = alerter
        self._bare: set[str] = set()
        self.view = ProtectionView()
        self._on_protected = on_protected
        self._on_held = on_held
        self._adopt = adopt

    @property
    def unprotected(self) -> int:
        """Positions the last pass left without a stop (for /health, metrics, the monitor)."""
        return len(self._bare)

    async def check(self) -> ProtectionReport:
        if self._resolve_opens is not None:
            # An open left in flight with its entry unproven may hold a bare position: it is
            # resolved (protected, or failed when nothing opened) before the pass reads.
            await self._resolve_opens()
        read_at = self._clock.now()
        refused: list[str] = []
        snapshot = await take_snapshot(
            self._exchange, self._store, self._clock, self._heartbeats, refused=refused
        )
        if snapshot is None:
            component = refused[0] if refused else "venue or database"
            self._recorder.record(
                EventType.HEALTH_CHECK_FAILED,
                exchange=self._exchange.venue.value,
                error=f"protection check skipped: the {component} could not be read",
                data={"component": component},
            )
            return ProtectionReport(checked=0, unprotected=0, fixed=0, failed=0, skipped=True)
        journal = {p.id: p for p in snapshot.positions}
        actions = protect(snapshot, self._params)
        suspects = {
            pid: journal[pid]
            for action in actions
            if (pid := getattr(action, "position_id", None)) in journal
        }
        held = {(v.symbol, v.side) for v in snapshot.venue_positions}
        listed = {o.order_id for o in snapshot.orders}
        attached = {(v.symbol, v.side) for v in snapshot.venue_positions if v.stop_price}
        for position in snapshot.positions:
            key = (position.symbol, position.side)
            if position.state is not PositionState.ACTIVE or key not in held:
                continue
            # the journal knows no stop for it at all, or names an order the venue does not
            # list while a stop stands at its level (an answer lost on the way): the keeper
            # records what stands
            unnamed = position.stop_price is None and position.stop_order_id is None
            gone = (
                position.stop_order_id is not None
                and position.stop_order_id not in listed
                and key not in attached
            )
            if unnamed or gone:
                suspects.setdefault(position.id, position)
        tally = _Tally(
            journal=journal,
            suspects=suspects,
            beats=self._heartbeats() if self._heartbeats else None,
            seen_bare={getattr(a, "position_id", None) for a in actions if leaves_unprotected(a)},
        )
        # Left to the open (or replacement) in flight on their symbol, but bare: counted.
        waiting = {_key(held) for held in bare_in_flight(snapshot)}
        tally.unprotected += len(waiting)
        # Bare and unknown to the journal (opened by hand): adopted in this pass, not left
        # bare until the synchronizer's next one, then judged by the keeper like every
        # suspect — an adoption whose stop the venue refused is still bare, and shown so.
        strangers = [a for a in actions if isinstance(a, PlaceStop) and a.position_id is None]
        unknown = {_key(a) for a in strangers}

        async def adopt_strangers() -> None:
            rows = await self._adopt_strangers(unknown)
            unknown.difference_update(_key(p) for p in rows.values())
            tally.unprotected += len(unknown)  # not adopted (the synchronizer could not)
            adopted = {pid: p for pid, p in rows.items() if pid not in suspects}
            journal.update(adopted)
            suspects.update(adopted)
            tally.adopted.update(adopted)
            await _all(self._protect(position, tally) for position in adopted.values())

        # Every symbol at once: the keeper is each symbol's one writer (its lock), and a
        # symbol's repair never waits on another's — a pass after a ban that found many
        # positions bare, or one whose adoption had the synchronizer close what ended
        # meanwhile (fills, fees and PnL read one by one), protected them one after
        # another, the last long after one round trip (simulator beyond the CI seeds,
        # bybit seed 1303).
        await _all(
            [self._protect(position, tally) for position in list(suspects.values())]
            + [adopt_strangers()]
        )
        unknown |= tally.unknown
        unprotected, fixed, failed = tally.unprotected, tally.fixed, tally.failed
        if self._on_held is not None:
            # Held with its stop and nothing to fix: a trailing state that took a mark for
            # its stop firing before this read trails on (the stop did not fire).
            for position in snapshot.positions:
                if (
                    position.id not in suspects
                    and position.state is PositionState.ACTIVE
                    and position.stop_price is not None
                    and (position.symbol, position.side) in held
                ):
                    await self._on_held(position, read_at)
        # not suspected this pass: protected (or still left to its operation, and bare)
        self._bare = (self._bare & set(suspects)) | waiting | unknown
        named = {_key(held): held.symbol for held in bare_in_flight(snapshot)}
        named.update((_key(stranger), stranger.symbol) for stranger in strangers)
        named.update(tally.reopened)
        self.view = _view(read_at, self._clock.now(), self._bare, journal, named)
        self._recorder.record(
            EventType.PROTECTION_CHECK_COMPLETED,
            exchange=self._exchange.venue.value,
            data={
                "positions": len(snapshot.venue_positions),
                "unprotected": unprotected,
                "fixed": fixed,
                "failed": failed,
                "still_unprotected": self.unprotected,  # left bare after this pass
            },
        )
        if unprotected - len(waiting) > self.settings.alert_threshold and self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"unprotected:{self._exchange.venue.value}",
                    severity=Severity.CRITICAL,
                    title=f"{unprotected} positions found without a stop",
                    text="the protection guard placed stops; check the venue and the events",
                )
            )
        return ProtectionReport(
            checked=len(snapshot.venue_positions),
            unprotected=unprotected,
            fixed=fixed,
            failed=failed,
        )

    async def _protect(self, position: Position, tally: "_Tally") -> None:
        """Have the keeper look after one suspect, and count what it found."""
        found = await self._keeper.ensure_protected(
            position, initial=self._stop_price, heartbeats=tally.beats, params=self._params
        )
        if found.ended is not None:
            # Its stop filled and a person opened the position the venue holds after it:
            # the journal's row is closed; the person's position is adopted and protected
            # like any opened by hand (never closed at market at the bot's old level).
            self._bare.discard(position.id)
            taken = await self._adopt_strangers({_key(position)})
            if not taken:  # not adopted (the synchronizer could not): still bare
                tally.unknown.add(_key(position))
                tally.reopened[_key(position)] = position.symbol
                tally.unprotected += 1
                return
            tally.journal.update(taken)
            tally.suspects.update(taken)
            position = next(iter(taken.values()))
            found = await self._keeper.ensure_protected(
                position, initial=self._stop_price, heartbeats=tally.beats, params=self._params
            )
            found = attrs.evolve(  # bare when this pass read the venue
                found, unprotected=True, fixed=found.protected and not found.busy
            )
        if position.id in tally.adopted and not found.unprotected:
            # Bare when this pass read the venue: protected now only if the adoption's
            # stop stands (the keeper found nothing wrong), else still bare.
            found = attrs.evolve(found, unprotected=True, fixed=found.protected and not found.busy)
        if found.failed and not found.unprotected and position.id in tally.seen_bare:
            # The keeper could not look again (the venue refused its read): the pass saw
            # the position bare and nothing was put right, so it is counted as seen.
            found = attrs.evolve(found, unprotected=True)
        tally.unprotected += found.unprotected
        tally.fixed += found.fixed
        tally.failed += found.failed
        if found.failed and found.unprotected:
            await self._still_bare(position, found.detail)
        elif not found.busy:
            self._bare.discard(position.id)
        if found.fixed and self._on_protected is not None:
            # bare, or a stop a person loosened put back: trailed from the stop that now
            # stands (a trailing state the mark took for fired meanwhile trails on)
            protected = await self._store.positions.get(position.id)
            if protected is not None and protected.stop_price is not None:
                await self._on_protected(protected)

    async def _adopt_strangers(self, wanted: set[str]) -> dict[str, Position]:
        """Have the synchronizer adopt the positions the journal does not know (`_key`s);
        the journal's positions on their symbols and sides afterwards (adopted by this
        pass's call, or by a synchronizer pass that was already adopting them)."""
        if not wanted or self._adopt is None:
            return {}
        await self._adopt()
        return {
            position.id: position
            for position in await self._store.positions.open_positions()
            if position.state is PositionState.ACTIVE and _key(position) in wanted
        }

    async def _still_bare(self, position: Position, detail: str) -> None:
        """Alert, once per position (the alert key deduplicates), and keep counting it."""
        self._bare.add(position.id)
        if self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"unprotected:{position.id}",
                    severity=Severity.CRITICAL,
                    title=f"{position.symbol} open WITHOUT a stop",
                    text=f"the guard retries every pass: {detail}",
                )
            )

    async def _stop_price(self, position: Position) -> Decimal | None:
        return await protective_stop(
            self._exchange, self._rules, position, self._stops, self._recorder
        )


async def _all(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run `coroutines` side by side to their ends (one symbol's failure never stops
    another's repair halfway); then raise their error — the process's end (a crash, a
    cancellation) before any other, the rest logged."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if not errors:
        return
    raised = next((e for e in errors if not isinstance(e, Exception)), errors[0])
    for other in errors:
        if other is not raised:
            logger.opt(exception=other).error("protection: another repair failed too: {}", other)
    raise raised


def _view(
    read_at: datetime,
    now: datetime,
    bare: set[str],
    journal: Mapping[str, Position],
    named: Mapping[str, str],
) -> ProtectionView:
    """`bare` holds journal ids and, for positions the journal has no row for yet, keys
    (`_key`); `named` gives the symbol of each key."""
    symbols = {journal[key].symbol for key in bare if key in journal}
    symbols |= {symbol for key, symbol in named.items() if key in bare}
    return ProtectionView(read_at=read_at, checked_at=now, symbols=frozenset(symbols))


def _key(held: VenuePosition | PlaceStop | Position) -> str:
    """How the guard names a bare position without a journal id: one left to its operation
    in flight, or one opened by hand that is not adopted yet."""
    return f"{held.venue.value}:{held.symbol}:{held.side.value}"


async def protective_stop(
    exchange: Exchange,
    rules: Mapping[str, MarketRules],
    position: Position,
    stops: StopParams,
    recorder: Recorder,
) -> Decimal | None:
    """Where a position found without a stop gets one (SPEC §5): `stop_loss_percent` from its
    entry, moved past the current mark if it would trigger at once, and pulled inside the
    liquidation price the venue lists for the position (`domain.stops.inside_liquidation`,
    the bound the emergency stop keeps too) with a `liquidation_inside_stop` event: a
    position opened by hand at 100x is liquidated about 1 % from its entry, long before a
    3 % stop. None if it cannot be priced (no market rules or no entry price)."""
    market = rules.get(position.symbol)
    if market is None or position.entry_price is None:
        return None
    held = await _held(exchange, position)
    mark = held.mark_price if held is not None and held.mark_price else None
    if mark is None:
        try:
            mark = await exchange.fetch_mark_price(position.symbol)
        except ExchangeUnavailable:
            mark = position.entry_price
    planned = initial_stop(position.side, position.entry_price, mark, market.tick_size, stops)
    liquidation = None if held is None else held.liquidation_price
    price = inside_liquidation(
        position.side,
        planned.price,
        position.entry_price,
        mark,
        liquidation,
        market.tick_size,
        stops,
    )
    if price != planned.price:
        recorder.record(
            EventType.LIQUIDATION_INSIDE_STOP,
            position=position,
            severity=Severity.WARNING,
            error=(
                f"the venue liquidates at {liquidation}, before the stop at {planned.price}; "
                f"the stop is placed at {price}, inside it"
            ),
            data={
                "when": "protective stop (the venue's liquidation price)",
                "liquidation_price": liquidation,
                "stop_price": price,
                "planned_price": planned.price,
                "mark_price": mark,
                "quantity": position.quantity,
                "closed": False,
            },
        )
    return price


async def _held(exchange: Exchange, position: Position) -> VenuePosition | None:
    """The venue's position for `position` (its mark and liquidation price); None when the
    venue holds none or cannot be read now (the stop is then priced without the bound)."""
    try:
        held = await exchange.fetch_positions()
    except ExchangeUnavailable:
        return None
    return next((p for p in held if p.symbol == position.symbol and p.side is position.side), None)
