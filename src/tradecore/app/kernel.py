"""The kernel: start, recover, run the loops, stop — the same in paper, demo and live mode.

Start: take the instance lock -> migrate -> load markets -> reconcile with the venue and
drive every operation left half-done to a safe end -> start the loops (signals, waves, mark
prices -> trailing, protection, sync, zombies, aged, and the catch-up that replays every
`CATCH_UP_SECONDS` the writes a database outage held back). Stop: stop taking signals, let a wave
in progress finish its opens, end the loops, resolve an open left with its entry unproven, wait
for stop moves in flight, flush the journal, release the lock. Positions stay open, protected
by their stops on the venue.

A loop that raises records a `critical_error` and carries on: bad input or a venue hiccup
never stops the bot.
"""

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs

from tradecore.domain.events import EventType, Severity
from tradecore.domain.positions import OperationKind, PositionState
from tradecore.domain.precision import MarketRules
from tradecore.ports.alerts import Alerter
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.lock import InstanceLock
from tradecore.ports.repositories import Store, StoreUnavailable
from tradecore.ports.signals import SignalSource

from .aged import AgedManager
from .backoff import backoff_seconds
from .closing import PositionCloser
from .inbox import SignalInbox
from .leverage import MarginDesk, MarginModeMismatch
from .open_position import OpenPosition
from .protection import ProtectionGuard, ProtectionView
from .recorder import Recorder
from .resilient_store import CATCH_UP_SECONDS, ResilientStore, resilient
from .settings import TradingSettings
from .settlement import Settlement
from .stop_keeper import StopKeeper
from .sync import Synchronizer
from .trailing import TrailingService
from .waves import WaveProcessor
from .zombies import ZombieSweeper

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class KernelParts:
    """Everything the kernel needs, as ports. The runner's container provides them."""

    exchange: Exchange
    store: Store
    events: EventSink
    clock: Clock
    ids: IdGenerator
    lock: InstanceLock
    account: str
    settings: TradingSettings = attrs.Factory(TradingSettings)
    signals: SignalSource | None = None
    alerter: Alerter | None = None
    migrate: Callable[[], Awaitable[object]] | None = None


@attrs.define
class Services:
    """The use cases, wired to one venue and one store."""

    store: ResilientStore
    recorder: Recorder
    keeper: StopKeeper
    margin: MarginDesk
    opener: OpenPosition
    trailing: TrailingService
    closer: PositionCloser
    guard: ProtectionGuard
    sync: Synchronizer
    zombies: ZombieSweeper
    aged: AgedManager
    inbox: SignalInbox
    waves: WaveProcessor
    rules: Mapping[str, MarketRules]


def build_services(parts: KernelParts, rules: Mapping[str, MarketRules]) -> Services:
    ex, clock, ids, s = parts.exchange, parts.clock, parts.ids, parts.settings
    store = resilient(parts.store)  # every write of every service takes the one path
    recorder = Recorder(parts.events, clock, ids)
    store.backlog.on_refused = lambda write, error: recorder.record(
        EventType.CRITICAL_ERROR,
        severity=Severity.CRITICAL,
        error=f"a write held through a database outage was refused when replayed and is "
        f"dropped: {write.repository}.{write.method}: {error!r}"[:1000],
    )
    keeper = StopKeeper(ex, store, recorder, clock, ids, s.keeper, rules=rules)
    settlement = Settlement(ex, store, recorder)
    margin = MarginDesk(ex, recorder, s.sizing)
    opener = OpenPosition(
        ex,
        store,
        keeper,
        recorder,
        clock,
        ids,
        stops=s.stops,
        alerter=parts.alerter,
        retry_delay_seconds=s.keeper.retry_delay_seconds,
        settlement=settlement,
        margin=margin,
    )
    trailing = TrailingService(
        store, keeper, recorder, clock, s.trailing, rules, alerter=parts.alerter, history=ex
    )
    keeper.on_followed = trailing.follow
    beats = trailing.heartbeats
    closer = PositionCloser(store, keeper, clock, trailing, settlement)
    keeper.on_closed = closer.recorded

    async def resolve_opens() -> None:
        """Opens left in flight with their entry unproven, resolved by each guard and sync
        pass (issue 11, item 5); one that ends protected is trailed from then on."""
        for result in await opener.resolve_unproven(rules):
            if result.opened and result.position is not None:
                await trailing.start_for(result.position)

    sync = Synchronizer(
        ex,
        store,
        keeper,
        recorder,
        clock,
        ids,
        rules,
        closer=closer,
        heartbeats=beats,
        stops=s.stops,
        interval_seconds=s.sync_interval_seconds,
        on_adopted=trailing.start_for,
        settlement=settlement,
        resolve_opens=resolve_opens,
    )
    guard = ProtectionGuard(
        ex,
        store,
        keeper,
        recorder,
        clock,
        rules,
        heartbeats=beats,
        stops=s.stops,
        params=s.reconcile,
        settings=s.protection,
        alerter=parts.alerter,
        on_protected=trailing.start_for,
        on_held=trailing.on_held,
        adopt=sync.adopt_missing,
        resolve_opens=resolve_opens,
    )
    zombies = ZombieSweeper(
        ex,
        store,
        keeper,
        recorder,
        clock,
        heartbeats=beats,
        params=s.reconcile,
        settings=s.zombies,
    )
    aged = AgedManager(
        ex,
        store,
        keeper,
        recorder,
        clock,
        rules,
        s.aged,
        on_closed=closer.on_closed,
        alerter=parts.alerter,
    )
    inbox = SignalInbox(recorder, s.waves.schedule)
    waves = WaveProcessor(
        ex,
        store,
        opener,
        recorder,
        clock,
        rules,
        s,
        inbox,
        on_opened=trailing.start_for,
        alerter=parts.alerter,
        margin=margin,
        # from the id source, so a paper session or a simulated world claims its waves the
        # same way on every run (its journal byte for byte), and live processes differ
        claimant=f"process:{parts.ids.new_id()}",
    )
    return Services(
        store=store,
        recorder=recorder,
        keeper=keeper,
        margin=margin,
        opener=opener,
        trailing=trailing,
        closer=closer,
        guard=guard,
        sync=sync,
        zombies=zombies,
        aged=aged,
        inbox=inbox,
        waves=waves,
        rules=rules,
    )


@attrs.frozen(kw_only=True)
class RecoveryReport:
    resumed_opens: int
    interrupted_stop_moves: int
    adopted: int
    closed: int
    unprotected: int


class StartAbandoned(Exception):
    """`stop()` was called while the start-up was waiting for the venue or the database."""


class Kernel:
    def __init__(self, parts: KernelParts) -> None:
        self.parts = parts
        self._services: Services | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loops: dict[str, str] = {}  # loop name -> "running", "finished" or "died"
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._start_done = asyncio.Event()
        self._start_done.set()  # no start in progress
        self._lock_held = False
        self._recovered = False
        self.started_at: datetime | None = None
        self.last_error: str | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the kernel has not started")
        return self._services

    def protection_view(self) -> ProtectionView:
        """What the application reports as unprotected (`/health`, metrics): the positions
        the last protection pass left without a stop; empty before the first pass."""
        if self._services is None:
            return ProtectionView()
        return self._services.guard.view

    @property
    def running(self) -> bool:
        """Started and recovered: until recovery has reconciled with the venue, a position
        may still be bare, so nothing should call the bot healthy."""
        return self._recovered and not self._stopped.is_set()

    # -- start ------------------------------------------------------------------------------

    async def start(self, *, loops: bool = True) -> RecoveryReport:
        """Lock, migrate, reconcile and recover; then start the loops (unless `loops=False`).

        A venue or database that does not answer is waited for (one `health_check_failed`
        event per attempt, backoff capped at 30 s), never a reason to give up: the bot must
        come back while a position may be bare. `stop()` during start-up ends those waits
        (StartAbandoned) or, once recovery runs, lets it finish and starts no loop.
        """
        self._start_done.clear()
        try:
            await self.parts.lock.acquire(self.parts.account)
            self._lock_held = True
            try:
                report = await self._start_up()
            except BaseException:
                await self._release()
                raise
            if loops and not self._stopping.is_set():
                self._start_loops()
            return report
        finally:
            self._start_done.set()

    async def _start_up(self) -> RecoveryReport:
        if self.parts.migrate is not None:
            await self._patiently("migrate the database", self.parts.migrate)
        rules = await self._patiently("load the venue's markets", self.parts.exchange.load_markets)
        self._services = build_services(self.parts, rules)
        await self._check_margin_mode(rules)
        self.started_at = self.parts.clock.now()
        self.services.recorder.record(
            EventType.BOT_STARTED,
            exchange=self.parts.exchange.venue.value,
            data={"account": self.parts.account, "markets": len(rules)},
        )
        # Recovery is safe to run again from the top: it is what a restart after a crash
        # at any instruction runs.
        report = await self._patiently("recover", self.recover)
        self._recovered = True
        return report

    async def _check_margin_mode(self, rules: Mapping[str, MarketRules]) -> None:
        """Refuse to start (MarginModeMismatch, with an event) when the account's margin mode
        — where the venue keeps one for the whole account — is not the configured one."""
        if not rules:
            return
        symbol = next(iter(rules))
        try:
            await self._patiently(
                "read the account's margin mode",
                lambda: self.services.margin.check_account(symbol),
            )
        except MarginModeMismatch as error:
            self.services.recorder.record(
                EventType.LEVERAGE_NOT_SET,
                severity=Severity.CRITICAL,
                exchange=self.parts.exchange.venue.value,
                error=str(error),
                data={"margin_mode": self.parts.settings.sizing.margin_mode.value},
            )
            raise

    async def _patiently(self, what: str, action: Callable[[], Awaitable[T]]) -> T:
        """`action()`, tried again after each venue or database outage until it answers."""
        recorder = Recorder(self.parts.events, self.parts.clock, self.parts.ids)
        attempt = 0
        while True:
            if self._stopping.is_set():
                raise StartAbandoned(f"stopped during start-up, before it could {what}")
            try:
                return await action()
            except (ExchangeUnavailable, StoreUnavailable) as error:
                if isinstance(error, ExchangeUnavailable) and not error.retryable:
                    raise
                attempt += 1
                delay = backoff_seconds(attempt)
                recorder.record(
                    EventType.HEALTH_CHECK_FAILED,
                    exchange=self.parts.exchange.venue.value,
                    error=f"start-up cannot {what} ({error}); trying again in {delay:.0f} s",
                    data={
                        "attempt": attempt,
                        "retry_in_seconds": delay,
                        "during": "start-up",
                        "component": "venue"
                        if isinstance(error, ExchangeUnavailable)
                        else "database",
                    },
                )
                await self._sleep_unless_stopping(delay)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        sleeping = asyncio.ensure_future(self.parts.clock.sleep(seconds))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopping):
                waiter.cancel()
            await asyncio.gather(sleeping, stopping, return_exceptions=True)

    async def recover(self) -> RecoveryReport:
        """Drive every operation left half-done to a safe end, then reconcile with the venue."""
        svc = self.services
        svc.recorder.record(EventType.POSITION_RECOVERY_STARTED)
        # Writes a crash left waiting for the database land first: recovery reads the journal.
        if not await svc.store.catch_up():
            raise StoreUnavailable(f"{svc.store.behind} writes from before wait for the database")
        await svc.trailing.restore()
        # A stop replacement a crash interrupted is finished first, by its client id: the
        # opens driven next then see the stop that stands (issue 10, story 8).
        replaced = await svc.keeper.resume()
        resumed = 0
        for position in await svc.store.positions.open_positions():
            if position.venue is self.parts.exchange.venue and position.state.is_opening:
                rules = svc.rules.get(position.symbol)
                if rules is not None:
                    result = await svc.opener.drive(position, rules, resumed=True)
                    resumed += 1
                    if result.opened and result.position is not None:
                        await svc.trailing.start_for(result.position)
        interrupted = await self._settle_operations()
        synced = await svc.sync.sync()
        if synced.skipped:
            # Recovery ends with the journal matching the venue, or not at all: a pass that
            # could not read one of them is tried again from the top (`_patiently`), never
            # left to the first periodic pass (one sync interval with a position the venue
            # closed while the bot was down still ACTIVE in the journal).
            what = f"the {synced.unread} could not be read for the synchronizer's pass"
            if synced.unread == "database":
                raise StoreUnavailable(what)
            raise ExchangeUnavailable(what)
        protected = await svc.guard.check()
        await svc.zombies.sweep()
        for position in await svc.store.positions.open_positions():
            if position.state is PositionState.ACTIVE and svc.trailing.state(position.id) is None:
                await svc.trailing.start_for(position)
        svc.trailing.catch_up()  # the marks no state judged: the venue's, in the background
        report = RecoveryReport(
            resumed_opens=resumed,
            interrupted_stop_moves=replaced + interrupted,
            adopted=synced.adopted,
            closed=synced.closed,
            unprotected=protected.unprotected,
        )
        svc.recorder.record(EventType.POSITION_RECOVERY_COMPLETED, data=attrs.asdict(report))
        return report

    async def _settle_operations(self) -> int:
        """End every operation a crash left in flight whose subject is now at a safe point.

        An open whose position has left the opening states has ended (the crash came between
        the last state change and the operation's end); an interrupted stop move has ended
        too — whichever stop stands, the protection pass that follows leaves exactly one; an
        interrupted market close has its order looked up and journaled if the venue took it.
        """
        store, now = self.services.store, self.parts.clock.now()
        interrupted = 0
        for operation in await store.operations.in_flight():
            if operation.venue is not self.parts.exchange.venue:
                continue
            if operation.kind is OperationKind.OPEN and operation.position_id is not None:
                position = await store.positions.get(operation.position_id)
                if position is not None and position.state.is_opening:
                    continue  # still opening: drive() ends it
                outcome = position.state.value if position else "abandoned"
            elif operation.kind is OperationKind.CLOSE:
                # its market order, if the venue took it, is journaled before the
                # synchronizer looks for what closed the position
                outcome = await self.services.keeper.settle_interrupted_close(operation)
            else:
                outcome = "interrupted"
                interrupted += operation.kind is OperationKind.REPLACE_STOP
            await store.operations.finish(operation.id, at=now, outcome=outcome)
        return interrupted

    # -- loops ------------------------------------------------------------------------------

    def _start_loops(self) -> None:
        svc, s = self.services, self.parts.settings
        self._spawn("waves", svc.waves.run(stopping=self._stopping))
        self._spawn("marks", self._follow_marks())
        self._spawn(
            "protection", self._every(lambda: s.protection.interval_seconds, svc.guard.check)
        )
        self._spawn("sync", self._every(lambda: s.sync_interval_seconds, svc.sync.sync))
        self._spawn("zombies", self._every(lambda: svc.zombies.interval_seconds, svc.zombies.sweep))
        self._spawn("aged", self._every(lambda: s.aged.check_interval_seconds, svc.aged.check))
        self._spawn("catch-up", self._every(lambda: CATCH_UP_SECONDS, svc.store.catch_up))
        if self.parts.signals is not None:
            self._spawn("signals", self._take_signals(self.parts.signals))

    @property
    def loops(self) -> dict[str, str]:
        """Each loop's state: "running", "finished" (its source ended, or the bot stops) or
        "died" (it raised: what it did is no longer done — /health turns red)."""
        return dict(self._loops)

    def _spawn(self, name: str, work: Awaitable[Any]) -> None:
        self._loops[name] = "running"

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                self._loops[name] = "finished"
                raise
            except Exception as error:  # a loop must never take the bot down silently
                self._loops[name] = "died"
                self._critical(f"the {name} loop stopped: {error!r}", error)
            else:
                self._loops[name] = "finished"

        self._tasks.append(asyncio.create_task(guarded(), name=f"tradecore-{name}"))

    async def _every(
        self, interval: Callable[[], float], action: Callable[[], Awaitable[object]]
    ) -> None:
        while not self._stopping.is_set():
            await self.parts.clock.sleep(interval())
            if self._stopping.is_set():
                return
            try:
                await action()
            except StoreUnavailable as error:
                self.services.recorder.record(
                    EventType.HEALTH_CHECK_FAILED,
                    error=f"database unavailable: {error}",
                    data={"component": "database", "writes_waiting": self.services.store.behind},
                )
            except ExchangeUnavailable as error:
                self.services.recorder.record(
                    EventType.RATE_LIMIT_HIT
                    if error.rate_limited
                    else EventType.HEALTH_CHECK_FAILED,
                    exchange=self.parts.exchange.venue.value,
                    error=str(error),
                    data={"component": "venue"},
                )
            except Exception as error:
                self._critical(
                    f"{getattr(action, '__qualname__', action)} failed: {error!r}", error
                )

    async def _follow_marks(self) -> None:
        symbols = sorted(self.services.rules)
        said_at: datetime | None = None  # the last time the database's absence was recorded
        async for tick in self.parts.exchange.watch_mark_prices(symbols):
            if self._stopping.is_set():
                return
            try:  # one tick the database or a bug spoils must not stop the trailing of all
                await self.services.trailing.on_tick(tick)
            except StoreUnavailable as error:
                now = self.parts.clock.now()
                if said_at is None or (now - said_at).total_seconds() >= 60:
                    said_at = now
                    self.services.recorder.record(
                        EventType.HEALTH_CHECK_FAILED,
                        symbol=tick.symbol,
                        error=f"database unavailable: a mark tick could not be followed: {error}",
                        data={"component": "database"},
                    )
            except Exception as error:
                self._critical(f"following the mark of {tick.symbol} failed: {error!r}", error)

    async def _take_signals(self, source: SignalSource) -> None:
        inbox, store, clock = self.services.inbox, self.services.store, self.parts.clock
        async for signal in source.signals():
            if inbox.put(signal, at=clock.now()) is not None:
                continue  # refused on arrival, with its fate
            if self._stopping.is_set():
                return  # held: the stop gives it its fate (expired)
            try:  # held by the store while the database is down; intake never stops
                await store.signals.add(signal, received_at=clock.now())
            except Exception as error:  # e.g. the disk refuses the spool: say so, go on
                self._critical(f"signal {signal.id} not recorded: {error!r}", error)

    def _critical(self, message: str, error: BaseException) -> None:
        self.last_error = message
        self.services.recorder.record(
            EventType.CRITICAL_ERROR,
            severity=Severity.CRITICAL,
            error=message,
            data={"stack_trace": "".join(traceback.format_exception(error))[-4000:]},
        )

    # -- stop -------------------------------------------------------------------------------

    async def stop(self, reason: str = "requested") -> None:
        """Graceful stop; open positions stay protected by their stops on the venue."""
        if self._stopped.is_set():
            return
        self._stopping.set()
        await self._start_done.wait()  # a start in progress gives up its waits, or finishes
        if self.parts.signals is not None:
            await self.parts.signals.close()
        if self._services is not None:
            await self.services.waves.idle()  # a wave in progress finishes its opens
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._services is not None:
            await self._resolve_left_in_flight()
            await self.services.trailing.drain()
            self.services.inbox.expire_all("bot_stopped")  # nothing will read them now
            self.services.recorder.record(
                EventType.BOT_STOPPED,
                exchange=self.parts.exchange.venue.value,
                data={"reason": reason},
            )
        await self.parts.events.flush()
        await self._release()
        self._stopped.set()

    async def _resolve_left_in_flight(self) -> None:
        """An open that ended with its entry unproven has no guard or sync pass left to
        resolve it once the loops end: its fill would stay bare until the next start. It is
        resolved once more here (protected, failed, or left for the restart to resolve)."""
        try:
            await self.services.opener.resolve_unproven(self.services.rules)
        except Exception as error:  # the stop goes on: the restart resolves it
            self._critical(f"resolving the opens in flight at stop failed: {error!r}", error)

    async def wait(self) -> None:
        await self._stopped.wait()

    async def _release(self) -> None:
        if self._lock_held:
            self._lock_held = False
            await self.parts.lock.release()
