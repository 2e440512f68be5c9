"""The one place adapters are chosen and wired: a dependency-injector container.

Connections (the database, the journal's writer, the venue's client, the alert client, the
health server) open in async `Resource`s the first time something needs them — asking for
`kernel()` opens what the kernel needs, `health_server()` the endpoint — and close in
`shutdown_resources()`; the constructors behind the other providers do no I/O. The venue is
chosen per mode by a `Selector`: the paper session provides its simulated venue, demo and
live get ccxt's. A test overrides any provider with a fake
(`container.paper_exchange.override(...)`, `container.database.override(...)`).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
from dependency_injector import containers, providers
from loguru import logger

from tradecore.adapters.account_lock import AccountLock, Taken, account_key, machine_lock
from tradecore.adapters.alerts import (
    AlertPolicy,
    HttpAlerter,
    LogAlerter,
    QueuedAlerter,
    TelegramChannel,
    WebhookChannel,
)
from tradecore.adapters.alerts.http import Channel
from tradecore.adapters.alerts.telegram import TelegramCommands
from tradecore.adapters.clock import RandomIds
from tradecore.adapters.dashboard import Feed
from tradecore.adapters.database import Database, connect_store, open_journal
from tradecore.adapters.dburl import InvalidDatabaseUrl, parse_database_url
from tradecore.adapters.journal import Journal, WriteSpoolFile
from tradecore.adapters.reporting.report import closed_pnl
from tradecore.adapters.reporting.telemetry import TeeSink, Telemetry
from tradecore.adapters.signals import ReplaySignalSource, WebSocketSettings, WebSocketSignalSource
from tradecore.app.alerting import AlertingSink
from tradecore.app.backoff import backoff_seconds
from tradecore.app.kernel import Kernel, KernelParts
from tradecore.app.operator import OperatorCommands, OperatorSources
from tradecore.app.resilient_store import ResilientStore
from tradecore.domain.waves import SignalLimits
from tradecore.ports.alerts import Alerter
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink
from tradecore.ports.exchange import Exchange
from tradecore.ports.lock import InstanceLock
from tradecore.ports.repositories import Store, StoreUnavailable
from tradecore.ports.signals import SignalSource

from .config import Config, Mode, Secrets, missing_keys
from .dashboard import dashboard_feed, dashboard_mounts, live_of
from .errors import StartupError, StoppedEarly
from .health import Health, HealthServer, HealthSources


@attrs.frozen(kw_only=True)
class SignalSpec:
    kind: str  # "websocket", "replay" or "none"
    path: Path | None = None


async def open_database(
    url: str, stopping: asyncio.Event, clock: Clock | None = None, in_loop: bool = False
) -> AsyncIterator[Database]:
    """The database, waited for while it is unreachable (a server down or refusing, a file
    another process holds): one line per attempt, backoff capped at 30 s, until it answers
    or `stopping` is set (StoppedEarly). A wrong URL, password or database name is exit 2.
    `clock` stamps SQLite's bookkeeping times; `in_loop` runs SQLite on the loop's thread
    (virtual time: docs/testing.md, "Same inputs, same seed, same journal")."""
    attempt = 0
    while True:
        try:
            database = await connect_store(url, in_loop=in_loop, clock=clock)
            break
        except InvalidDatabaseUrl as exc:
            raise StartupError(f"database.url: {exc}") from None
        except StoreUnavailable as exc:
            attempt += 1
            delay = backoff_seconds(attempt)
            logger.warning(
                "start-up: {}; trying again in {:.0f} s (attempt {})",
                database_problem(url, exc.__cause__ or exc),
                delay,
                attempt,
            )
            # Real time: the database is outside the bot's clock.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            if stopping.is_set():
                raise StoppedEarly(
                    "stopped during start-up, while waiting for the database"
                ) from None
        except Exception as exc:
            raise StartupError(database_problem(url, exc)) from None
    try:
        yield database
    finally:
        await database.close()


def database_problem(url: str, error: BaseException) -> str:
    shown = url
    with contextlib.suppress(InvalidDatabaseUrl):
        shown = parse_database_url(url).redacted()
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"cannot open the database {shown} ({detail}); start the server or fix database.url "
        "(TRADECORE_DATABASE__URL, --database-url)"
    )


async def open_venue(
    mode: str, config: Config, secrets: Secrets, clock: Clock, events: EventSink, ids: IdGenerator
) -> AsyncIterator[Exchange]:
    """The real venue through ccxt: demo unless the mode is live (the runner's `trade` checks
    that both `--live` and the configuration asked for it)."""
    # Imported here: ccxt is heavy, and a paper session has no use for it.
    from tradecore.adapters.ccxt import CcxtExchange, Environment, build_client, event_status

    key, secret = secrets.keys_for(config.venue)
    if not key or not secret:
        raise StartupError(missing_keys(config))
    environment = Environment.LIVE if mode == Mode.LIVE else Environment.DEMO
    testing_url = config.testing.exchange_url.rstrip("/")
    client = build_client(
        config.venue,
        api_key=key,
        secret=secret,
        environment=environment,
    )
    if testing_url:  # a loopback exchange for tests; refused in live mode (config.py)
        from tradecore.testing.loopback import point_at

        point_at(client, testing_url)
    exchange = CcxtExchange(
        client,
        config.venue,
        clock=clock,
        on_stream_status=event_status(events, clock, ids, config.venue),
    )
    try:
        yield exchange
    finally:
        await exchange.close()


async def open_events(
    database: Database, spool_path: str, clock: Clock, ids: IdGenerator
) -> AsyncIterator[Journal]:
    Path(spool_path).parent.mkdir(parents=True, exist_ok=True)
    journal = open_journal(database, spool_path, clock=clock, ids=ids)
    journal.start()
    try:
        yield journal
    finally:
        await journal.close()


async def open_alerter(
    mode: str, config: Config, secrets: Secrets, clock: Clock, events: EventSink, store: Store
) -> AsyncIterator[Alerter]:
    policy = AlertPolicy(
        dedupe_seconds=config.alerts.dedupe_seconds, per_minute=config.alerts.per_minute
    )
    channels: list[Channel] = []
    if secrets.telegram_token and config.alerts.telegram_chat_id:
        channels.append(
            TelegramChannel(token=secrets.telegram_token, chat_id=config.alerts.telegram_chat_id)
        )
    if secrets.webhook_url:
        channels.append(WebhookChannel(url=secrets.webhook_url))
    if mode == Mode.PAPER or not channels:  # a simulated account pages nobody
        yield LogAlerter(clock=clock, store=store, policy=policy)
        return
    alerter = HttpAlerter(
        channels,
        clock=clock,
        events=events,
        store=store,
        policy=policy,
        timeout_seconds=config.alerts.timeout_seconds,
    )
    # the use cases await `send`: it only queues, so a slow Telegram never holds them up
    queued = QueuedAlerter(alerter, events=events, clock=clock)
    try:
        yield queued
    finally:
        await queued.aclose()
        await alerter.aclose()


async def open_telegram_commands(
    mode: str,
    config: Config,
    secrets: Secrets,
    clock: Clock,
    events: EventSink,
    store: Store,
    kernel: Kernel,
    health: Health,
    database_url: str,
) -> AsyncIterator[TelegramCommands | None]:
    """The operator's read-only commands in the alert chat (demo and live, when the token and
    the chat id are set and `alerts.telegram_commands` is on); polling until shutdown."""
    chat = config.alerts.telegram_chat_id
    token = secrets.telegram_token
    if mode == Mode.PAPER or not token or not chat or not config.alerts.telegram_commands:
        yield None
        return
    queries = OperatorCommands(
        OperatorSources(
            clock=clock,
            mode=mode,
            venue=config.venue.value,
            open_positions=store.positions.open_positions,
            protection=kernel.protection_view,
            health=health.report,
            closed_pnl=lambda: closed_pnl(database_url),
        )
    )
    users = config.alerts.telegram_user_ids
    commands = TelegramCommands(
        TelegramChannel(token=token, chat_id=chat),
        queries,
        events=events,
        clock=clock,
        allowed_user_ids=frozenset(users) if users else None,
    )
    commands.start()
    try:
        yield commands
    finally:
        await commands.aclose()


def signal_source(
    spec: SignalSpec,
    config: Config,
    secrets: Secrets,
    events: EventSink,
    clock: Clock,
    ids: IdGenerator,
) -> SignalSource | None:
    # a signal's timestamp must begin a wave of the configured schedule
    limits = SignalLimits(schedule=config.trading.waves.schedule)
    if spec.kind == "replay" and spec.path is not None:
        return ReplaySignalSource(
            spec.path, events=events, clock=clock, ids=ids, pace=True, limits=limits
        )
    if spec.kind == "websocket":
        settings = WebSocketSettings(
            url=config.signals.url,
            token=secrets.signals_token,
            auth_message=config.signals.auth_message,
        )
        return WebSocketSignalSource(settings, events=events, clock=clock, ids=ids, limits=limits)
    return None


def account_of(mode: str, config: Config, secrets: Secrets) -> str:
    """What the instance lock is keyed by. A paper session's simulated account is its own
    database (`venue:account`); a venue account is its API key's fingerprint, never the key
    (a loopback exchange for tests: its address and key)."""
    if mode == Mode.PAPER:
        return f"{config.venue.value}:{config.account}"
    key, _ = secrets.keys_for(config.venue)
    return account_key(config.venue.value, mode, key, exchange_url=config.testing.exchange_url)


async def take_lock(
    mode: str, config: Config, database: Database, account: str
) -> AsyncIterator[InstanceLock]:
    """The instance lock, taken before anything else opens or binds a port: a second process
    on the same account is refused here (LockHeld, exit 3). A venue account is locked on the
    machine (whatever database) and in the database (another machine sharing it); a paper
    session in its database. Given back at shutdown; the kernel gets it as already taken."""
    locks: list[InstanceLock] = [database.instance_lock()]
    if mode != Mode.PAPER:
        locks.insert(0, machine_lock(config.lock_dir or None))
    lock = AccountLock(locks)
    await lock.acquire(account)
    try:
        yield Taken(account)
    finally:
        await lock.release()


def kernel_parts(
    *,
    exchange: Exchange,
    store: Store,
    events: EventSink,
    clock: Clock,
    ids: IdGenerator,
    lock: InstanceLock,
    account: str,
    config: Config,
    signals: SignalSource | None,
    alerter: Alerter,
) -> KernelParts:
    return KernelParts(
        exchange=exchange,
        store=store,
        events=events,
        clock=clock,
        ids=ids,
        lock=lock,
        account=account,
        settings=config.trading,
        signals=signals,
        alerter=alerter,
    )


def health_of(
    *,
    kernel: Kernel,
    telemetry: Telemetry,
    journal: Journal,
    database: Database,
    clock: Clock,
    config: Config,
    mode: str,
    spec: SignalSpec,
) -> Health:
    async def open_positions() -> int:
        return len(await database.store.positions.open_positions())

    return Health(
        HealthSources(
            telemetry=telemetry,
            clock=clock,
            venue=config.venue.value,
            mode=mode,
            stream=spec.kind,
            running=lambda: kernel.running,
            started_at=lambda: kernel.started_at,
            open_positions=open_positions,
            journal=journal,
            protection=kernel.protection_view,
            loops=lambda: kernel.loops,
            writes_waiting=lambda: kernel.services.store.behind if kernel.running else 0,
        )
    )


def dashboard_of(kernel: Kernel, health: Health, url: str, clock: Clock, config: Config) -> Feed:
    """The dashboard the health server serves at /dashboard (`wiring/dashboard.py`)."""
    return dashboard_feed(
        url, clock=clock, aged=config.trading.aged.params, live=live_of(kernel, health)
    )


async def serve_health(
    health: Health, host: str, port: int, dashboard: Feed | None = None, token: str | None = None
) -> AsyncIterator[HealthServer | None]:
    if port == 0:  # 0 turns the endpoint off
        yield None
        return
    mounts = dashboard_mounts(dashboard, host, token)
    server = HealthServer(health, host=host, port=port, mounts=mounts)
    await server.start()  # a busy port is retried in the background, never an exit
    try:
        yield server
    finally:
        await server.stop()
        if dashboard is not None:
            await dashboard.stop()


class Container(containers.DeclarativeContainer):
    config = providers.Dependency(instance_of=Config)
    secrets = providers.Dependency(instance_of=Secrets)
    clock: providers.Dependency[Any] = providers.Dependency()

    mode = providers.Callable(lambda c: c.mode.value, config)
    database_url = providers.Callable(lambda c: c.database.url, config)
    spool_path = providers.Callable(lambda c: c.database.spool_path, config)
    health_host = providers.Callable(lambda c: c.health.host, config)
    health_port = providers.Callable(lambda c: c.health.port, config)
    signal_spec = providers.Object(SignalSpec(kind="websocket"))

    ids = providers.Singleton(RandomIds)
    # Set by SIGINT / SIGTERM (`lifecycle.stop_on_signals`): ends the start-up's waits.
    stopping = providers.Singleton(asyncio.Event)
    # SQLite on the loop's own thread: virtual time overrides it (docs/testing.md)
    database_in_loop = providers.Object(False)
    database = providers.Resource(open_database, database_url, stopping, clock, database_in_loop)
    # The one write path (app/resilient_store.py) for the kernel and the alerter alike: what
    # waits for the database is spooled beside the events (`<database.spool_path>.writes`).
    store = providers.Singleton(
        lambda db, path: ResilientStore(db.store, spool=WriteSpoolFile(path)),
        database,
        providers.Callable(lambda c: f"{c.database.spool_path}.writes", config),
    )
    journal = providers.Resource(open_events, database, spool_path, clock, ids)
    telemetry = providers.Singleton(Telemetry)
    events = providers.Singleton(TeeSink, journal, telemetry)

    # the paper session provides its simulated venue; demo and live open ccxt's
    paper_exchange: providers.Dependency[Any] = providers.Dependency()
    venue = providers.Resource(open_venue, mode, config, secrets, clock, events, ids)
    exchange = providers.Selector(mode, paper=paper_exchange, demo=venue, live=venue)
    account = providers.Callable(account_of, mode, config, secrets)
    # taken first (runner/trade.py, `wiring.paper`), before a port is bound
    lock = providers.Resource(take_lock, mode, config, database, account)
    alerter = providers.Resource(open_alerter, mode, config, secrets, clock, events, store)
    # The signal client's and the kernel's events pass the alert rules on their way (the
    # alerter itself reports its own failures straight to `events`).
    alerting = providers.Singleton(AlertingSink, events, alerter)
    signals = providers.Singleton(signal_source, signal_spec, config, secrets, alerting, clock, ids)
    parts = providers.Singleton(
        kernel_parts,
        exchange=exchange,
        store=store,
        events=alerting,
        clock=clock,
        ids=ids,
        lock=lock,
        account=account,
        config=config,
        signals=signals,
        alerter=alerter,
    )
    kernel = providers.Singleton(Kernel, parts)
    health = providers.Singleton(
        health_of,
        kernel=kernel,
        telemetry=telemetry,
        journal=journal,
        database=database,
        clock=clock,
        config=config,
        mode=mode,
        spec=signal_spec,
    )
    dashboard = providers.Singleton(dashboard_of, kernel, health, database_url, clock, config)
    health_server = providers.Resource(
        serve_health,
        health,
        health_host,
        health_port,
        dashboard,
        providers.Callable(lambda s: s.dashboard_token, secrets),
    )
    telegram_commands = providers.Resource(
        open_telegram_commands,
        mode,
        config,
        secrets,
        clock,
        events,
        store,
        kernel,
        health,
        database_url,
    )
