"""The paper session: the real kernel on the simulated venue, in virtual time by default.

Wiring only: the market (sample or files) goes into the paper venue, the kernel runs as it
would against a real one, and the virtual clock is moved to its next deadline whenever every
task is waiting on it. A database call in flight holds the clock still, so time in the books
(e.g. the instant between a fill and its stop) is the venue's round trips, not our I/O.
"""

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

import asyncpg
import attrs
from dependency_injector import providers
from loguru import logger

from tradecore.adapters.clock import RandomIds, SeededIds, SystemClock, VirtualClock
from tradecore.adapters.dburl import parse_database_url
from tradecore.adapters.journal import WriteSpoolFile
from tradecore.adapters.paper import PROFILES, PaperExchange, PathPlayer, VenueEngine
from tradecore.adapters.paper.sample import (
    SAMPLE_SYMBOLS,
    Market,
    generate,
    market_for_signals,
    read_prices,
    synthetic_signals,
)
from tradecore.adapters.reporting.analysis import Pnl, pnl
from tradecore.adapters.reporting.source import open_reader
from tradecore.adapters.reporting.summary import Summary, summarize
from tradecore.adapters.virtual_time import CountedStore, ThreadWork, drive, run_driven
from tradecore.app.kernel import Kernel
from tradecore.app.resilient_store import ResilientStore
from tradecore.domain.events import EventType
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.repositories import Store

from .config import Config, ConfigError, Secrets
from .container import Container, SignalSpec
from .errors import StoppedEarly
from .lifecycle import resolve, shutdown, start_unless_stopped, stop_on_signals

T = TypeVar("T")
E = EventType


@attrs.frozen(kw_only=True)
class PaperOptions:
    signals: Path | None = None
    prices: Path | None = None
    realtime: bool = False
    hours: float | None = None
    seed: int | None = None
    symbols: int | None = None
    database_url: str | None = None
    health_port: int | None = None  # None: as configured (off unless health.in_paper)
    workdir: Path = Path("var")
    progress: bool = True


@attrs.frozen(kw_only=True)
class Prepared:
    market: Market
    signals_path: Path
    end: datetime
    seed: int


def prepare(config: Config, options: PaperOptions, now: datetime | None) -> Prepared:
    """The market and the signals file of the session (`now`: start there, wall-clock run)."""
    seed = config.paper.seed if options.seed is None else options.seed
    venue = config.venue
    sample_dir = options.workdir / "paper"
    prices = read_prices(options.prices) if options.prices else None
    if options.signals is not None:
        market, end = market_for_signals(options.signals, seed=seed, venue=venue, prices=prices)
        return Prepared(market=market, signals_path=options.signals, end=end, seed=seed)
    if prices is not None:
        lines = synthetic_signals(prices, seed=seed, venue=venue)
        path = sample_dir / "signals.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return Prepared(market=prices, signals_path=path, end=prices.end, seed=seed)
    hours = config.paper.hours if options.hours is None else options.hours
    symbols = config.paper.symbols if options.symbols is None else options.symbols
    if symbols > SAMPLE_SYMBOLS:
        given = "paper.symbols" if options.symbols is None else "--symbols"
        raise ConfigError(
            f"{given} = {symbols} is not allowed; the bundled sample holds {SAMPLE_SYMBOLS} "
            "symbols: ask for at most that many, or trade your own market with --prices"
        )
    kwargs: dict[str, Any] = {"start": now} if now is not None else {}
    sample = generate(seed=seed, hours=hours, symbols=symbols, venue=venue, **kwargs)
    path = sample.write_signals(sample_dir / "signals.jsonl")
    return Prepared(market=sample.market, signals_path=path, end=sample.market.end, seed=seed)


class Progress:
    """A plain-text progress line on stderr (redrawn in place on a terminal)."""

    def __init__(
        self,
        stream: TextIO,
        start: datetime,
        end: datetime,
        enabled: bool,
        *,
        realtime: bool = False,
    ) -> None:
        self._stream = stream
        self._start = start
        self._span = max((end - start).total_seconds(), 1.0)
        self._enabled = enabled
        self._realtime = realtime
        self._shown: tuple[object, ...] = ()
        self._tty = enabled and stream.isatty()

    def update(self, now: datetime, detail: str) -> None:
        """Redraw when the percentage moves (1 % on a terminal, 10 % in a file), when `detail`
        changes, and in a realtime session each minute too: wall time is slow enough that a
        percent can take minutes."""
        if not self._enabled:
            return
        share = min(1.0, (now - self._start).total_seconds() / self._span)
        step = int(share * 100) if self._tty else int(share * 10) * 10
        shown: tuple[object, ...] = (step,)
        if self._realtime:
            shown = (step, detail, now.replace(second=0, microsecond=0))
        if shown == self._shown:
            return
        self._shown = shown
        bar = "#" * (step // 4) + "." * (25 - step // 4)
        line = f"[{bar}] {step:3d}%  {now:%Y-%m-%d %H:%M} UTC  {detail}"
        self._stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled and self._tty:
            self._stream.write("\n")
            self._stream.flush()


def session_database_url(config: Config, options: PaperOptions, now: datetime) -> str:
    if options.database_url:
        return options.database_url
    if config.paper.database_url:
        return config.paper.database_url
    folder = options.workdir / "paper"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"session-{now:%Y%m%dT%H%M%S}"
    path = folder / f"{stem}.db"
    number = 1
    while path.exists():  # a fresh database each session: its waves are not yet processed
        number += 1
        path = folder / f"{stem}-{number}.db"
    path.touch()
    return f"sqlite:///{path}"


async def session_ids(seed: int, url: str) -> IdGenerator:
    """Ids from the seed on a database without events, so a rerun journals the same ids (on
    PostgreSQL too: rows of one instant are read back in id order, so ids decide the order);
    random ones on a database that already holds events (a repeated seed would draw ids it
    holds, and the journal skips an id it has) or that cannot be asked now."""
    parsed = parse_database_url(url)
    if parsed.path is None:
        fresh = await _pg_holds_no_events(parsed.url)
    else:
        fresh = parsed.is_memory or _holds_no_events(Path(parsed.path))
    return SeededIds(seed) if fresh else RandomIds()


async def _pg_holds_no_events(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=5.0)
    except Exception:  # unreachable now: the session waits for it; random ids are safe
        return False
    try:
        if await connection.fetchval("SELECT to_regclass('events') IS NULL"):
            return True  # never migrated
        return bool(await connection.fetchval("SELECT NOT EXISTS (SELECT 1 FROM events)"))
    finally:
        await connection.close()


def _holds_no_events(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None
    except sqlite3.OperationalError:  # no events table yet: never migrated
        return True


async def run_paper(
    config: Config,
    secrets: Secrets,
    options: PaperOptions,
    *,
    err: TextIO | None = None,
    container: Container | None = None,
) -> Summary:
    """Run one paper session to its end and return its summary."""
    wall = SystemClock()
    prepared = prepare(config, options, wall.now() if options.realtime else None)
    market = prepared.market
    clock: SystemClock | VirtualClock = wall if options.realtime else VirtualClock(market.start)
    engine = VenueEngine(
        PROFILES[config.venue],
        now=clock.now,
        markets=market.rules,
        marks=dict(market.marks),
        balance=config.paper.balance,
        funding_rate=config.paper.funding_rate,
        # the simulated account is in the configured margin mode (a real Bybit one must be)
        margin_mode=config.trading.sizing.margin_mode,
    )
    exchange = PaperExchange(engine, clock=clock, latency=config.paper.latency_seconds)
    url = session_database_url(config, options, wall.now())
    container = container or Container()
    container.config.override(config)
    container.secrets.override(secrets)
    container.clock.override(clock)
    container.database_url.override(url)
    container.spool_path.override(_spool_for(url, config))
    container.paper_exchange.override(exchange)
    container.signal_spec.override(SignalSpec(kind="replay", path=prepared.signals_path))
    if isinstance(clock, VirtualClock):
        # Same inputs, same seed -> the same journal (docs/testing.md, determinism): ids from
        # the seed, and the database answering within the awaiting task's step (SQLite on the
        # loop's thread, PostgreSQL on a side loop) instead of whenever a thread or socket does.
        container.ids.override(await session_ids(prepared.seed, url))
        container.database_in_loop.override(True)
    work = ThreadWork()
    container.store.override(  # the one write path, over the store virtual time counts
        providers.Singleton(
            lambda db, path: ResilientStore(
                cast(Store, CountedStore(db.store, work)), spool=WriteSpoolFile(f"{path}.writes")
            ),
            container.database,
            container.spool_path,
        )
    )
    if options.health_port is not None:
        container.health_port.override(options.health_port)
    elif not config.health.in_paper:
        container.health_port.override(0)
    restore = work.watch_loop(asyncio.get_running_loop())
    stop = asyncio.Event()
    container.stopping.override(providers.Object(stop))
    try:
        stream = err or sys.stderr
        with stop_on_signals(stop):  # Ctrl-C ends the session early, with its summary
            return await _session(
                container, engine, market, prepared, clock, work, options, stream, stop
            )
    finally:
        restore()


async def _session(
    container: Container,
    engine: VenueEngine,
    market: Market,
    prepared: Prepared,
    clock: SystemClock | VirtualClock,
    work: ThreadWork,
    options: PaperOptions,
    err: TextIO,
    stop: asyncio.Event,
) -> Summary:
    try:
        # the lock first: a second bot on the account is refused before a port is bound
        await resolve(container.lock())
        kernel = await resolve(container.kernel())  # StoppedEarly if stopped while waiting
        await resolve(container.health_server())
        telemetry = container.telemetry()
        progress = Progress(
            err, market.start, prepared.end, options.progress, realtime=options.realtime
        )

        def show() -> None:
            waves = telemetry.count(E.WAVE_COMPLETED, E.WAVE_NOT_FOUND)
            opened = telemetry.count(E.SIGNAL_EXECUTED)
            progress.update(clock.now(), f"waves {waves}  opened {opened}")

        shown = parse_database_url(container.database_url()).redacted()  # no password
        _announce(engine, market, prepared, clock, shown)
        # The market moves once the bot is up: start-up's own I/O (the instance lock, the
        # migrations) is not something the clock can wait for.
        player = PathPlayer(engine, clock, market.list_paths())
        if isinstance(clock, VirtualClock):
            await _run_virtual(kernel, player, clock, work, prepared.end, show, stop)
        else:
            await _run_wall(kernel, player, clock, prepared.end, show, stop)
        progress.finish()
        journal = await journal_pnl(container.database_url())
        summary = summarize(
            telemetry=telemetry,
            reports=kernel.services.waves.reports,
            engine=engine,
            now=clock.now(),
            start=market.start,
            starting_balance=Decimal(container.config().paper.balance),
            database=shown,
            journal=journal,
        )
        logger.info("paper session ended: {}", summary.as_dict())
        return summary
    finally:
        await shutdown(container)


async def _run_virtual(
    kernel: Kernel,
    player: PathPlayer,
    clock: VirtualClock,
    work: ThreadWork,
    end: datetime,
    show: Callable[[], None],
    stop: asyncio.Event,
) -> None:
    await run_driven(clock, work, kernel.start())
    player.start()
    await drive(clock, work, until=stop.is_set, end=end, on_step=show)
    show()
    player.stop()  # the market ends with the session: nothing moves while the bot stops
    await run_driven(clock, work, kernel.stop("paper session ended"))


async def _run_wall(
    kernel: Kernel,
    player: PathPlayer,
    clock: SystemClock,
    end: datetime,
    show: Callable[[], None],
    stop: asyncio.Event,
) -> None:
    if await start_unless_stopped(kernel, stop, "signal during start-up") is None:
        raise StoppedEarly("stopped during start-up")
    player.start()
    await wait_for_end(clock, end, show, stop)
    player.stop()
    await kernel.stop("paper session ended")


def _announce(
    engine: VenueEngine, market: Market, prepared: Prepared, clock: Clock, database: str
) -> None:
    logger.info(
        "paper session on simulated {}: {} symbols, {} to {}, {} time, database {}",
        engine.venue.value,
        len(market.rules),
        market.start.isoformat(),
        prepared.end.isoformat(),
        "virtual" if isinstance(clock, VirtualClock) else "wall-clock",
        database,
    )


async def wait_for_end(
    clock: Clock, end: datetime | None, show: Callable[[], None], stop: asyncio.Event
) -> None:
    """Until `end` on the wall clock (forever if None) or `stop` is set (SIGINT / SIGTERM:
    see `lifecycle.stop_on_signals`)."""
    while (end is None or clock.now() < end) and not stop.is_set():
        show()
        left = 5.0 if end is None else min(5.0, (end - clock.now()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(left, 0.0))


async def journal_pnl(url: str) -> Pnl | None:
    """Realized PnL as the journal holds it, read as `report` reads it (so the two agree to
    the cent); None for an in-memory database, which no second connection can see."""
    parsed = parse_database_url(url)
    if parsed.is_memory:
        return None
    reader = await open_reader(url)
    try:
        return pnl(await reader.positions())
    finally:
        await reader.close()


def _spool_for(url: str, config: Config) -> str:
    """The session's own spool path: beside its SQLite file; for a database in memory, one
    that dies with the process; for a server's database, one named after its URL. Never
    the live bot's (`database.spool_path`): a paper session would take the bot's spooled
    events and queue files over into its own database (review 16)."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return url[len("sqlite:///") :] + ".spool"
    if parse_database_url(url).is_memory:
        return str(Path(tempfile.gettempdir()) / f"tradecore-paper-{os.getpid()}.spool")
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{config.database.spool_path}.paper-{digest}"
