"""The dashboard, wired to the running bot: its feed from the database, what the kernel and
`/health` add live, and its routes on the health server (`/dashboard`). Everything it shows is
built in `tradecore.adapters.dashboard`; this module only says where the facts come from."""

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from aiohttp import web
from loguru import logger

from tradecore.adapters.dashboard import DatabaseViews, Feed, Live, binding_problem, mount
from tradecore.app.kernel import Kernel
from tradecore.domain.aged import AgedParams
from tradecore.ports.clock import Clock

from .health import Health


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
