"""`dashboard`: the dashboard page on its own, from a database (`python -m runner dashboard
--database URL`). The bot's own page (`/dashboard` on its health server) and everything the
page shows are wired in `tradecore.wiring.dashboard`."""

import asyncio
from collections.abc import Callable, Sequence

from aiohttp import web

from tradecore.adapters.clock import SystemClock
from tradecore.adapters.dashboard import (
    Feed,
    account_feeds,
    binding_problem,
    mount_accounts,
)
from tradecore.adapters.reporting.accounts import Account
from tradecore.domain.aged import AgedParams
from tradecore.wiring.config import ConfigError
from tradecore.wiring.dashboard import dashboard_feed, dashboard_mounts
from tradecore.wiring.health import HealthServer
from tradecore.wiring.lifecycle import stop_on_signals


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
