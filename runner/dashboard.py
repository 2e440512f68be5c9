"""The dashboard, wired: on the bot's health server (`/dashboard`), or on its own from a
database (`python -m runner dashboard --database URL`). Everything it shows is built in
`tradecore.adapters.dashboard`; this module only says where the facts come from."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from aiohttp import web
from loguru import logger

from tradecore.adapters.clock import SystemClock
from tradecore.adapters.dashboard import (
    DatabaseViews,
    Feed,
    Live,
    account_feeds,
    binding_problem,
    mount,
    mount_accounts,
)
from tradecore.adapters.reporting.accounts import Account
from tradecore.app.kernel import Kernel
from tradecore.domain.aged import AgedParams
from tradecore.ports.clock import Clock

from .config import ConfigError
from .health import Health, HealthServer
from .lifecycle import stop_on_signals


def live_of(kernel: Kernel, health: Health | None) -> Callable[[], Awaitable[Live]]:
    """What the running bot adds to the journal's picture: its last marks, its protection
    pass's view and its `/health` answer."""

    async def live() -> Live:
        view = kernel.protection_view()
        marks: dict[str, Decimal] = {}
        with contextlib.suppress(RuntimeError):  # not started yet
            marks = kernel.services.trailing.marks()
        body = (await health.report())[1] if health is not None else None
        return Live(
            marks=marks,
            unprotected=view.symbols if view.checked_at is not None else None,
            checked_at=view.checked_at,
            health=body,
        )

    return live


def dashboard_feed(
    url: str,
    *,
    clock: Clock,
    aged: AgedParams,
    live: Callable[[], Awaitable[Live]] | None = None,
    interval_seconds: float = 0.5,
) -> Feed:
    views = DatabaseViews(url, now=clock.now, aged=aged, live=live)
    return Feed(views, interval_seconds=interval_seconds, close=views.close)


def dashboard_mounts(
    feed: Feed | None, host: str, token: str | None
) -> Sequence[Callable[[web.Application], None]]:
    """The dashboard's routes for the health server on `host`; none (and a warning) where a
    token is required and none is set: `/health` and `/metrics` are served all the same."""
    if feed is None:
        return ()
    problem = binding_problem(host, token)
    if problem is not None:
        logger.warning("dashboard off: {}", problem)
        return ()
    return (lambda app: mount(app, feed, token=token),)


async def run_dashboard(
    url: str,
    *,
    host: str,
    port: int,
    token: str | None,
    aged: AgedParams,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve the dashboard of the database at `url` until SIGINT / SIGTERM (or `stop`)."""
    problem = binding_problem(host, token)
    if problem is not None:
        raise ConfigError(problem)
    feed = dashboard_feed(url, clock=SystemClock(), aged=aged)
    mounts = dashboard_mounts(feed, host, token)
    return await _serve(mounts, [feed], host=host, port=port, stop=stop)


async def run_dashboard_accounts(
    accounts: Sequence[Account],
    *,
    host: str,
    port: int,
    token: str | None,
    aged: AgedParams,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve every account of `accounts`: `/dashboard` lists them and links each one's page."""
    problem = binding_problem(host, token)
    if problem is not None:
        raise ConfigError(problem)
    feeds = account_feeds(accounts, now=SystemClock().now, aged=aged)
    mounts = (lambda app: mount_accounts(app, feeds, token=token),)
    return await _serve(mounts, [f for _, f in feeds.values()], host=host, port=port, stop=stop)


async def _serve(
    mounts: Sequence[Callable[[web.Application], None]],
    feeds: Sequence[Feed],
    *,
    host: str,
    port: int,
    stop: asyncio.Event | None,
) -> int:
    server = HealthServer(None, host=host, port=port, mounts=mounts)
    stop = stop or asyncio.Event()
    with stop_on_signals(stop):
        await server.start()
        if server.listening:
            print(f"dashboard: http://{host}:{port}/dashboard (Ctrl-C stops it)", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()
            for feed in feeds:
                await feed.stop()
    return 0
