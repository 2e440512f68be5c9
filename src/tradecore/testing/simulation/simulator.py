"""One seed, run: the whole kernel (all loops) on the paper venue and a real SQLite store, in
virtual time, while the world of the seed happens to it and the checker watches every event.
"""

import asyncio
import contextlib
import contextvars
import functools
import importlib
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

import attrs

from tradecore.adapters.clock import VirtualClock, settle, settle_ready
from tradecore.adapters.journal import Journal, WriteSpoolFile
from tradecore.adapters.paper import PROFILES
from tradecore.adapters.paper.faults import Fault
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.virtual_time import ThreadWork
from tradecore.app.kernel import Kernel, KernelParts
from tradecore.app.protection import ProtectionView
from tradecore.app.resilient_store import ResilientStore
from tradecore.app.settings import TradingSettings
from tradecore.domain.model import Side
from tradecore.domain.orders import OrderRole, role_of
from tradecore.domain.positions import PositionState
from tradecore.domain.signals import Signal
from tradecore.ports.exchange import Accepted
from tradecore.ports.repositories import Store
from tradecore.testing import FakeVenue, FreeLock

from .explain import timeline
from .incidents import act, fault_of
from .invariants import Checker, Excuse, Violation, Windows
from .process import (
    CheckedSink,
    Crash,
    Outage,
    Process,
    SignalStream,
    SimEventWriter,
    SimIds,
    SimStore,
    inline_sqlite,
    journal_digest,
    sim_exchange,
)
from .stop_history import stop_history_problems
from .world import (
    FAULT_KINDS,
    INITIAL_STOP_CRASH,
    REPLACE_CRASH,
    Incident,
    MarkStyle,
    World,
    mark_path,
    tick_times,
)

T = TypeVar("T")

LIFE: contextvars.ContextVar[int] = contextvars.ContextVar("simulated_process", default=0)
RESTART_AFTER_FAILED_START = 5.0  # seconds: a start-up that failed (database down) retries
FLUSH_SECONDS = 30.0  # how often (virtual) the simulator writes the journal


@attrs.frozen(kw_only=True)
class SeedResult:
    seed: int
    world: World
    violations: tuple[Violation, ...]
    counts: Counter[str]
    digest: str  # sha256 of the events table, every column of every row
    events: int
    wall_seconds: float
    cpu_seconds: float = 0.0  # this process's CPU time (the box may be shared)
    story: tuple[str, ...] = ()  # the books and events around the first violation

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    @property
    def first(self) -> Violation | None:
        return self.violations[0] if self.violations else None


def sim_settings() -> TradingSettings:
    """The settings of the simulated world: the defaults (aged: 3 h + 8 h grace, guard 60 s,
    sync 120 s, zombies 60-300 s) except that a wave's window looks for signals every 15 s
    instead of 5 s (fewer wake-ups; signals still arrive in time). `--config` replaces them."""
    defaults = TradingSettings()
    return attrs.evolve(defaults, waves=attrs.evolve(defaults.waves, poll_seconds=15))


def windows_for(settings: TradingSettings, round_trip: float) -> Windows:
    keeper = settings.keeper
    retries = keeper.attempts * keeper.retry_delay_seconds
    return Windows(
        round_trip=round_trip,
        guard_interval=settings.protection.interval_seconds,
        sync_interval=settings.sync_interval_seconds,
        zombie_interval=settings.zombies.max_interval_seconds,
        slack=retries + 10 * round_trip + 1.0,
        trailing=settings.trailing,
        stops=settings.stops,
        aged=settings.aged.params,
    )


class Simulation:
    def __init__(self, world: World, settings: TradingSettings | None = None) -> None:
        self.world = world
        self.settings = settings or sim_settings()
        self.clock = VirtualClock(world.start)
        self.venue = FakeVenue(
            PROFILES[world.venue],
            markets=world.markets,
            marks={style_symbol: style.start for style_symbol, style in self._styles()},
            clock=self.clock,
            latency=world.latency,
            cancel_reduce_only_when_flat=not world.zombies_left_by_venue,
        )
        self.windows = windows_for(self.settings, world.latency)
        self.checker = Checker(self.venue, self.windows).attach()
        self.checker.health = self._protection_view
        self.checker.app_up = self._following_marks
        self.counts: Counter[str] = Counter()
        self.work = ThreadWork()
        self.outage = Outage()
        self.stream = SignalStream()
        self.kernel: Kernel | None = None
        self.process: Process | None = None
        self._lives = 0
        self._reaped = True
        self._restart_due = False
        self._down: Excuse | None = None
        self._quiet = False
        self._tasks: dict[int, list[asyncio.Future[Any]]] = {}  # by the life that made them
        # by id(fault), holding the fault itself: a fault that never fired is dropped by the
        # venue, and a freed object's id can be reused by the next one (miscounted kinds)
        self._fault_kinds: dict[int, tuple[Fault, Incident]] = {}
        self._pending_restart: object | None = None
        self._downtime = 0.0  # how long the next crash keeps the process down
        self._booting: asyncio.Future[None] | None = None
        self._flushed = 0  # events written so far
        self._flush_at = datetime.min.replace(tzinfo=UTC)
        self._waits = 0
        self._race: Incident | None = None  # armed: waits for the next protection pass
        # a race under way: its symbol, and whether its pass has read every open order yet
        self._racing: tuple[Incident, str, bool] | None = None
        self._replace_crash: Incident | None = None  # armed: waits for a trailing replacement
        self._initial_stop_crash: Incident | None = None  # armed: waits for an open's stop

    def _protection_view(self) -> ProtectionView | None:
        """What the running application reports as unprotected (`/health`, metrics)."""
        return self.kernel.protection_view() if self.kernel is not None else None

    def _following_marks(self) -> bool:
        """Whether the application is up and sees the marks: recovered, loops on, alive."""
        process, kernel = self.process, self.kernel
        return process is not None and not process.dead and kernel is not None and kernel.running

    def _styles(self) -> Iterator[tuple[str, MarkStyle]]:
        return zip(self.world.symbols, self.world.marks, strict=True)

    # ----------------------------------------------------------------- the run

    async def run(self) -> SeedResult:
        started, cpu = time.perf_counter(), time.process_time()
        database = await inline_sqlite(self.clock)
        with tempfile.TemporaryDirectory(prefix="tradecore-sim-") as folder:
            self._folder = folder
            self.journal = Journal(
                SimEventWriter(database, self.clock),
                f"{folder}/events.spool",
                clock=self.clock,
                batch_size=100_000,
                max_queue=1_000_000,
                flush_interval=1e9,  # written when the simulator flushes: the same every run
                write_ahead=False,  # one journal outlives every simulated crash
            )
            self.journal.start()
            self.sink = CheckedSink(self.journal, self.checker.on_event)
            self.database = database
            try:
                digest, events = await self._run(database)
            finally:
                await self.journal.close()
                await database.close()
        first = self.checker.violations[0] if self.checker.violations else None
        story = () if first is None else tuple(timeline(self.venue.books, self.sink.events, first))
        return SeedResult(
            story=story,
            seed=self.world.seed,
            world=self.world,
            violations=tuple(self.checker.violations),
            counts=self.counts,
            digest=digest,
            events=events,
            wall_seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
        )

    async def _run(self, database: SqliteDatabase) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()

        def quiet_crashes(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if isinstance(context.get("exception"), Crash):
                return  # a task of a crashed process: dying was its job
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        factory = loop.get_task_factory()

        def marked(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> Any:
            task = (
                factory(loop, coro, **options)
                if factory is not None
                else asyncio.Task(coro, loop=loop, **options)
            )
            life = LIFE.get()
            if life:
                self._tasks.setdefault(life, []).append(task)
            return task

        loop.set_exception_handler(quiet_crashes)
        loop.set_task_factory(marked)
        selector = getattr(loop, "_selector", None)
        if selector is not None:
            loop._selector = _BusySelector(selector)  # type: ignore[attr-defined]
        try:
            return await self._world(database)
        finally:
            if selector is not None:
                loop._selector = selector  # type: ignore[attr-defined]
            loop.set_task_factory(factory)
            loop.set_exception_handler(previous)

    async def _world(self, database: SqliteDatabase) -> tuple[str, int]:
        paths = [(symbol, mark_path(style)) for symbol, style in self._styles()]
        self._next_marks(paths, tick_times(self.world))
        for signal in self.world.signals:
            self.clock.call_at(signal.created_at, functools.partial(self._deliver, signal))
        for incident in self.world.incidents:
            at = self.world.start + timedelta(seconds=incident.at)
            self.clock.call_at(at, functools.partial(self._happen, incident))
        self._boot()
        await self._drive(until=None, end=self.world.end)
        await self._quiesce()
        await self.journal.flush()
        return await journal_digest(database)

    async def _drive(self, *, until: Callable[[], bool] | None, end: datetime | None) -> None:
        """Move virtual time deadline by deadline, never while the store is working, reaping a
        crashed process and restarting it when its downtime is over."""
        # the simulated process waits on nothing outside the loop (the store answers inline):
        # a settle with nothing ready is skipped (`settle_ready`), the same order of work
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        while until is None or not until():
            if ready is None or ready:
                await settle()
            if self.process is not None and self.process.dead and not self._reaped:
                await self._reap()
                continue
            if self._restart_due:
                self._restart_due = False
                self._boot()
                continue
            if self.work.pending:  # a store call is under way (inline: one more loop pass)
                self._waits += 1
                await asyncio.sleep(0 if self._waits < 1000 else 0.0002)
                continue
            self._waits = 0
            if self.clock.now() >= self._flush_at and self.journal.stats.emitted > self._flushed:
                # written every FLUSH_SECONDS of virtual time: the same rows, the same
                # recorded_at, on every run of the seed
                self._flushed = self.journal.stats.emitted
                self._flush_at = self.clock.now() + timedelta(seconds=FLUSH_SECONDS)
                await self.journal.flush()
                continue
            deadline = self.clock.next_deadline()
            if deadline is None or (end is not None and deadline > end):
                if end is not None and self.clock.now() < end:
                    await self.clock.run_until(end, settling=settle_ready)
                return
            await self.clock.run_until(deadline, settling=settle_ready)

    async def _until_done(self, coroutine: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(coroutine)
        await self._drive(until=task.done, end=None)
        return task.result()

    # ----------------------------------------------------------------- processes

    def _boot(self) -> None:
        self._lives += 1
        process = Process(self._lives, self.work)
        process.on_crash = self._crashed
        self.process = process
        self._reaped = False
        self.stream = self.stream.reconnect()
        parts = KernelParts(
            exchange=sim_exchange(self.venue.exchange, process, self._around),
            # As the runner wires it (wiring/container.py): writes an outage holds back go
            # to a spool file first, which the next life lands before it recovers — a crash
            # during an outage loses none (binance seeds 474, 514 lost a replacement's
            # operation with the process, and its restart took the new stop for a stranger's).
            store=ResilientStore(
                cast(
                    Store, SimStore(self.database.store, process, self.outage, self._store_answered)
                ),
                spool=WriteSpoolFile(f"{self._folder}/writes.spool"),
            ),
            events=self.sink,
            clock=self.clock,
            ids=SimIds(process.number),
            lock=FreeLock(),
            account=f"simulation-{self.world.venue.value}",
            settings=self.settings,
            signals=self.stream,
        )
        self.kernel = Kernel(parts)
        token = LIFE.set(process.number)  # every task this life creates is marked with it
        try:
            self._booting = asyncio.ensure_future(self._start(self.kernel, process))
        finally:
            LIFE.reset(token)

    async def _start(self, kernel: Kernel, process: Process) -> None:
        try:
            await kernel.start()
        except Crash:
            return
        except Exception as error:  # the start-up could not finish (e.g. the database is down)
            self.counts[f"start_failed:{type(error).__name__}"] += 1
            process.dead = True  # this life is over; the reaper starts a new one shortly
            self._downtime = RESTART_AFTER_FAILED_START
            return
        if self._down is not None and not process.dead:
            up = self.clock.now() + timedelta(seconds=self.windows.round_trip + self.windows.slack)
            self.checker.close_excuse(self._down, up)
            self._down = None

    def _crashed(self, point: str) -> None:
        self.counts[f"crash:{point}"] += 1

    async def _reap(self) -> None:
        """Drop the dead process: cancel every task it had, close its mark streams."""
        self._reaped = True
        assert self.process is not None
        doomed = self._tasks.pop(self.process.number, [])
        for task in doomed:
            task.cancel()
        await asyncio.gather(*doomed, return_exceptions=True)  # also retrieves their Crash
        await self.venue.exchange.close()
        # what the store wrote with a change the dead process never emitted (bybit 1607)
        stored = await self.sink.catch_up(self.database)
        if stored:
            self.counts["journal:events stored, not emitted"] += stored
        if self._down is None:
            self._down = self.checker.excuse(None, "crash", until=None)
        if not self._restart_due and self._pending_restart is None:
            self._restart_after(self._downtime)

    def _restart_after(self, seconds: float) -> None:
        def due() -> None:
            self._pending_restart = None
            self._restart_due = True

        if self._down is None:
            self._down = self.checker.excuse(None, "restart", until=None)
        self._pending_restart = self.clock.call_at(
            self.clock.now() + timedelta(seconds=seconds), due
        )

    # ----------------------------------------------------------------- the world happening

    def _next_marks(
        self, paths: list[tuple[str, Iterator[Decimal | None]]], waits: Iterator[float]
    ) -> None:
        at = self.clock.now() + timedelta(seconds=next(waits))
        if at > self.world.end:
            return

        def tick() -> None:
            if self._quiet:
                return
            for symbol, path in paths:
                mark = next(path)
                if mark is not None:
                    self.venue.engine.set_mark(symbol, mark)
            self._next_marks(paths, waits)

        self.clock.call_at(at, tick)

    def _deliver(self, signal: Signal) -> None:
        self.stream.deliver(signal)

    def _happen(self, incident: Incident) -> None:
        if self._quiet:
            return
        kind = incident.kind
        if kind == "crash":
            self._crash(incident)
        elif kind == REPLACE_CRASH:
            if self._replace_crash is not None:
                self.counts[f"{REPLACE_CRASH} (missed: another came first)"] += 1
            self._replace_crash = incident
        elif kind == INITIAL_STOP_CRASH:
            if self._initial_stop_crash is not None:
                self.counts[f"{INITIAL_STOP_CRASH} (missed: another came first)"] += 1
            self._initial_stop_crash = incident
        elif kind.startswith("race:"):
            if self._race is not None:
                self.counts[f"{self._race.kind} (missed: another came first)"] += 1
            self._race = incident
        elif kind == "database_outage":
            self._database_outage(incident)
        elif kind == "signal_outage":
            self._signal_outage(incident)
        elif kind in FAULT_KINDS:
            self._fault(incident)
        else:
            self._person(incident)

    def _crash(self, incident: Incident) -> None:
        process = self.process
        if process is None or process.dead or self._down is not None:
            self.counts["crash:missed (already down)"] += 1
            return
        self._downtime = incident.duration
        process.arm(incident.crash_point, incident.crash_after)

    def _database_outage(self, incident: Incident) -> None:
        self.counts["outage:database"] += 1
        self.outage.down = True
        end = self.clock.now() + timedelta(seconds=incident.duration)
        self.checker.excuse(None, "database outage", until=end + self.windows.after_fault())

        def back() -> None:
            self.outage.down = False

        self.clock.call_at(end, back)

    def _signal_outage(self, incident: Incident) -> None:
        self.counts["outage:signals"] += 1
        self.stream.down = True

        def back() -> None:
            self.stream.down = False

        self.clock.call_at(self.clock.now() + timedelta(seconds=incident.duration), back)

    def _fault(self, incident: Incident) -> None:
        symbol = self._symbol_for(incident) or incident.symbol  # aimed where the bot trades
        fault = attrs.evolve(fault_of(incident), symbol=symbol)
        self._fault_kinds[id(fault)] = (fault, incident)
        self.venue.inject(fault)
        end = self.clock.now() + timedelta(seconds=incident.duration)
        self.checker.excuse(symbol, incident.kind, until=end + self.windows.after_fault())
        self.clock.call_at(end, lambda: self.venue.engine.faults.remove(fault))

    def _person(self, incident: Incident) -> None:
        symbol = self._symbol_for(incident)
        if symbol is None:
            self.counts[f"person:{incident.kind} (missed: no position)"] += 1
            return
        done = act(self.venue, incident, symbol)
        window = self.windows.after_person(incident.kind)
        self.checker.excuse(symbol, incident.kind, until=self.clock.now() + window, fault=False)
        self.counts[f"person:{incident.kind}" + ("" if done else " (refused)")] += 1

    async def _around(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        send: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Between the application and the venue. An armed guard race (`world.RACES`) starts
        as the next protection pass sends its read of the positions: a person removes a
        position's stop just before the read reaches the venue, so the pass sees it bare;
        the pass's read of every open order comes next. An armed initial stop crash takes the
        next stop an open sends."""
        if (
            name in _STOP_SENDS
            and self._initial_stop_crash is not None
            and await self._sends_initial_stop(args, kwargs)
        ):
            return await self._crash_after_initial_stop(send)
        if name == "create_stop_order" and self._replace_crash is not None:
            return await self._crash_in_replacement(args, kwargs, send)
        racing = self._racing
        whole = not (args or kwargs)  # a read of the whole account
        if name == "fetch_open_orders" and racing is not None and whole and _in_protection_pass():
            self._racing = (racing[0], racing[1], True)  # the pass has read the venue
        race = self._race
        if race is None or self._quiet or name != "fetch_positions" or args or kwargs:
            return await send()
        if not _in_protection_pass():
            return await send()
        held = [s for s in self.world.symbols if self.venue.position(s) and self.venue.stops(s)]
        if not held:
            return await send()  # nothing to race on: the next pass
        symbol = race.symbol if race.symbol in held else held[0]
        self._race, self._racing = None, (race, symbol, False)
        self.counts[race.kind] += 1
        act(self.venue, attrs.evolve(race, kind="cancel_stop"), symbol)
        window = self.windows.after_person("cancel_stop")
        self.checker.excuse(
            symbol, f"{race.kind}: cancel_stop", until=self.clock.now() + window, fault=False
        )
        return await send()

    async def _crash_in_replacement(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], send: Callable[[], Awaitable[Any]]
    ) -> Any:
        """An armed replace crash (`world.REPLACE_CRASH`): a trailing step — a move of a
        position's stop, one of ours already on the venue, by less than the trailing
        service's emergency improvement, so the move after it waits for the rate limit — creates
        the new stop (create-then-cancel), the venue takes it, and the process dies as the
        answer comes back, before it records the new stop or cancels the old one (issue 10,
        story 8). Any other create, or a refused one, leaves it armed."""
        incident, process = self._replace_crash, self.process
        task = asyncio.current_task()
        symbol: str = args[0] if args else kwargs["symbol"]
        trigger: Decimal | None = args[3] if len(args) > 3 else kwargs.get("trigger_price")
        moving = task is not None and task.get_name().startswith("trailing-move-")
        if (
            incident is None
            or self._quiet
            or not moving
            or process is None
            or process.dead
            or self._down is not None
            or not self._trailing_step(symbol, trigger)
        ):
            return await send()
        answer = await send()
        if not isinstance(answer, Accepted) or process.dead:
            return answer
        self._replace_crash = None
        self.counts[incident.kind] += 1
        self._downtime = incident.duration
        process.dead = True
        process.crash_point = REPLACE_CRASH
        raise Crash(f"{REPLACE_CRASH}: the new stop {answer.order.order_id} is on the venue")

    async def _sends_initial_stop(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """The stop on its way is an open's: the journal's position on its symbol waits for
        its stop (PENDING_SL: the open's initial stop, or its emergency stop after a failed
        rollback), and the process can die."""
        process = self.process
        if self._quiet or process is None or process.dead or self._down is not None:
            return False
        symbol: str = args[0] if args else kwargs["symbol"]
        if _trigger_of(args, kwargs) is None:
            return False  # a position stop's removal
        position = await self.database.store.positions.open_for(self.world.venue, symbol)
        return position is not None and position.state is PositionState.PENDING_SL

    async def _crash_after_initial_stop(self, send: Callable[[], Awaitable[Any]]) -> Any:
        """An armed initial stop crash (`world.INITIAL_STOP_CRASH`): an open sends the stop
        for its fill, the venue takes it, and the process dies as the answer comes back,
        before it records the stop (issue 10, story 7). The restart must take the stop that
        stands as the open's — by its client id, or by the venue's "already done" answer to
        the same stop sent again (Binance -4116, Bybit 110072 / 34040) — and never roll the
        protected position back. A refused stop leaves it armed."""
        incident, process = self._initial_stop_crash, self.process
        assert incident is not None and process is not None
        answer = await send()
        if not isinstance(answer, Accepted) or process.dead:
            return answer
        self._initial_stop_crash = None
        self.counts[incident.kind] += 1
        self._downtime = incident.duration
        process.dead = True
        process.crash_point = INITIAL_STOP_CRASH
        raise Crash(f"{INITIAL_STOP_CRASH}: the stop {answer.order.order_id} is on the venue")

    def _trailing_step(self, symbol: str, trigger: Decimal | None) -> bool:
        """A new stop at `trigger` replaces one of ours by less than the emergency improvement
        (`TrailingParams`): the trailing service moves again only after its rate limit."""
        ours = [o.trigger_price for o in self.venue.stops(symbol) if _ours(o)]
        if trigger is None or not ours:
            return False
        emergency = self.settings.trailing.emergency_improvement_percent / 100
        return all(old is not None and abs(trigger - old) < old * emergency for old in ours)

    async def _store_answered(self, name: str) -> None:
        """After a store call answered. The race's pass ends its read with the journal's
        operations in flight (`app/snapshot.py`: the journal after the venue): that answer
        comes back slowly, and as it arrives the mark jumps in the raced position's favour,
        so the trailing service moves its stop after the pass read everything and before
        the pass acts on what it read."""
        racing = self._racing
        if racing is None or not racing[2] or name != "in_flight" or not _in_protection_pass():
            return
        if self._quiet:  # the run is over: nothing happens to the bot any more
            self._racing = None
            return
        self._racing = None
        race, symbol, _ = racing
        late = timedelta(seconds=race.duration + self.windows.round_trip + self.windows.slack)
        self.checker.excuse(
            None, f"{race.kind}: a slow answer", until=self.clock.now() + late, fault=False
        )
        self._jump(symbol, race.fraction)
        await self.clock.sleep(race.duration)

    def _jump(self, symbol: str, fraction: Decimal) -> None:
        """The mark jumps `fraction` in the position's favour, from the better of the mark
        and the entry: far enough to activate (or move) its trailing stop at once."""
        held = self.venue.position(symbol)
        if held is None:
            return
        mark, tick = self.venue.mark(symbol), self.venue.rules(symbol).tick_size
        if held.side is Side.LONG:
            price = max(mark, held.entry_price) * (1 + fraction)
        else:
            price = min(mark, held.entry_price) * (1 - fraction)
        self.venue.engine.set_mark(symbol, (price / tick).quantize(Decimal(1)) * tick)

    def _symbol_for(self, incident: Incident) -> str | None:
        assert incident.symbol is not None
        if incident.kind == "open_by_hand":
            return incident.symbol
        held = [s for s in self.world.symbols if self.venue.position(s) is not None]
        if incident.symbol in held:
            return incident.symbol
        return held[0] if held else None

    # ----------------------------------------------------------------- the end

    async def _quiesce(self) -> None:
        """Nothing injected, nothing in flight, a guard and a sync pass: then compare."""
        self._quiet = True
        self.venue.engine.faults.clear()
        self.outage.down = False
        self.stream.down = False
        if self.process is not None:
            self.process.armed = None
        settle_for = (
            self.windows.guard_interval + self.windows.sync_interval + self.windows.slack + 5
        )
        await self._drive(until=None, end=self.clock.now() + timedelta(seconds=settle_for))
        if self.process is not None and self.process.dead:
            await self._drive(until=lambda: not self._dead(), end=None)
        self._count_faults()
        if self._replace_crash is not None:
            self.counts[f"{REPLACE_CRASH} (missed: no trailing replacement)"] += 1
        if self._initial_stop_crash is not None:
            self.counts[f"{INITIAL_STOP_CRASH} (missed: no open sent its stop)"] += 1
        kernel = self.kernel
        assert kernel is not None
        if kernel.running:
            services = kernel.services
            await self._until_done(services.guard.check())
            await self._until_done(services.sync.sync())
            await self._until_done(services.zombies.sweep())
            await self._nothing_in_flight()
            await self.journal.flush()
            await self.checker.quiescent(self.database.store, self.sink.events)
            self.checker.violations.extend(  # the journal replays the books' stop history
                stop_history_problems(
                    self.sink.events, self.venue.books, self.checker.excuses, at=self.clock.now()
                )
            )
            await self._until_done(kernel.stop("simulation over"))
        self.checker.detach()

    async def _nothing_in_flight(self, *, patience: float = 120.0) -> None:
        """The loops still run: a wave may be opening positions right now. Quiescence is
        "nothing in flight" (issue 10), so time moves on until no operation is in flight and
        no position is still opening (within `patience`; past it the comparison says why)."""
        store = self.database.store
        end = self.clock.now() + timedelta(seconds=patience)
        while self.clock.now() < end:
            flying = await store.operations.in_flight()
            opening = [p for p in await store.positions.open_positions() if p.state.is_opening]
            if not flying and not opening:
                return
            await self._drive(until=None, end=self.clock.now() + timedelta(seconds=1))

    def _dead(self) -> bool:
        return (
            self.process is None
            or self.process.dead
            or not (self.kernel is not None and self.kernel.running)
        )

    def _count_faults(self) -> None:
        fired: dict[int, Incident] = {}
        for fault, _op, _symbol in self.venue.engine.faults.fired:
            held = self._fault_kinds.get(id(fault))
            if held is not None and held[0] is fault:
                fired[held[1].number] = held[1]
        for incident in fired.values():
            self.counts[f"fault:{incident.kind}"] += 1
        self.counts["fault:(scheduled, never fired)"] += sum(
            1 for _, i in self._fault_kinds.values() if i.number not in fired
        )


class _BusySelector:
    """The loop's selector while a world runs. The simulated process waits on no socket or
    file (the venue is in the loop, the store answers inline), so a pass of the loop that has
    work ready (timeout 0) does not ask the kernel for I/O: only every 64th such pass does
    (the loop's self-pipe, a thread's wake-up). A pass that would wait (nothing ready: a real
    sleep, a thread's answer awaited) selects as before. Tasks run in the same order."""

    SKIP = 63

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._skipped = 0

    def select(self, timeout: float | None = None) -> Any:
        if timeout == 0 and self._skipped < self.SKIP:
            self._skipped += 1
            return []
        self._skipped = 0
        return self._inner.select(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# The venue calls that send a stop-loss: a stop order, or a position's own stop (Bybit).
_STOP_SENDS = ("create_stop_order", "set_position_stop")


def _trigger_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The trigger price of a `create_stop_order` (4th argument) or `set_position_stop`
    (2nd) call."""
    if "trigger_price" in kwargs:
        return kwargs["trigger_price"]
    return args[3] if len(args) > 3 else args[1] if len(args) == 2 else None


def _ours(order: Any) -> bool:
    return role_of(order.client_order_id) is not OrderRole.FOREIGN


def _in_protection_pass() -> bool:
    """Whether the running task is the kernel's protection loop (a pass of the guard)."""
    task = asyncio.current_task()
    return task is not None and task.get_name() == "tradecore-protection"


async def run_world(
    world: World, settings: TradingSettings | None = None, *, plant: int | None = None
) -> SeedResult:
    """Run one world; under a planted bug (`plant`: a story number) when asked."""
    with planted(plant):
        return await Simulation(world, settings).run()


@contextlib.contextmanager
def planted(story: int | None) -> Iterator[None]:
    """Re-introduce a fixed bug for the run (`tradecore.testing.planted`, imported lazily)."""
    if story is None:
        yield
        return
    try:
        module = importlib.import_module("tradecore.testing.planted")
    except ImportError as error:
        raise RuntimeError(
            "planted bugs need tradecore.testing.planted, which this checkout does not have"
        ) from error
    switch = module.planted(story)
    if hasattr(switch, "__enter__"):  # a context manager: the bug is back inside it only
        with switch:
            yield
    else:  # a plain call that re-introduced it
        yield
