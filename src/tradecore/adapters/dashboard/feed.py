"""Where the dashboard's view comes from, and how it reaches the pages that watch it.

`DatabaseViews` reads the journal (read-only, its own connection: `reporting.open_reader`)
and adds what the running bot knows (`Live`, when served by the bot). `Feed` rebuilds the
view every `interval_seconds` of wall time while at least one page watches, and pushes it to
every watcher when it changed (server-sent events); with nobody watching it reads nothing.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from loguru import logger

from tradecore.adapters.reporting.accounts import Account, Copy, count_once, fingerprint_of
from tradecore.adapters.reporting.analysis import pnl
from tradecore.adapters.reporting.source import PositionRow, Reader, open_reader
from tradecore.domain.aged import AgedParams

from .view import (
    FATE_EVENTS,
    LIFECYCLE_EVENTS,
    WAVE_EVENTS,
    Inputs,
    Live,
    build_view,
    digest_key,
    shown_positions,
)

FATES_READ = 2000  # the last fate events read: enough for the last waves of ~85 signals
ALERTS_SHOWN = 20
KEEPALIVE_SECONDS = 15.0

View = dict[str, Any]


class DatabaseViews:
    """Builds the view from the database at `url`; the connection is opened on first use and
    opened again after a failure (the database restarted), so the page says what failed and
    recovers by itself."""

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime],
        aged: AgedParams | None = None,
        live: Callable[[], Awaitable[Live]] | None = None,
        account: str | None = None,
    ) -> None:
        self._url = url
        self._account = account  # one of several accounts: the view names it
        self._now = now
        self._aged = aged or AgedParams()
        self._live = live
        self._reader: Reader | None = None
        self.rows: tuple[PositionRow, ...] = ()  # the positions the last view was built from

    async def __call__(self) -> View:
        named = {} if self._account is None else {"account": self._account}
        try:
            reader = await self._connect()
            return {**named, **await self._build(reader)}
        except Exception as exc:  # the page shows it; the next refresh tries again
            await self.close()
            error = f"{type(exc).__name__}: {exc}"
            return {**named, "now": self._now().isoformat(), "error": error}

    async def _connect(self) -> Reader:
        if self._reader is None:
            self._reader = await open_reader(self._url)
        return self._reader

    async def _build(self, reader: Reader) -> View:
        live = await self._live() if self._live is not None else None
        now = self._now()
        positions = await reader.positions()
        self.rows = tuple(positions)
        shown = [p.id for p in shown_positions(positions)]
        inputs = Inputs(
            now=now,
            positions=positions,
            events=await reader.events_of_many(shown),
            fates=await reader.latest_of((*FATE_EVENTS, *WAVE_EVENTS), FATES_READ),
            lifecycle=await reader.latest_of(LIFECYCLE_EVENTS, 50),
            trailing=await reader.trailing(),
            alerts=await reader.alerts(ALERTS_SHOWN),
            aged=self._aged,
            live=live,
        )
        return build_view(inputs)

    def positions_read(self) -> tuple[PositionRow, ...]:
        """The positions the last view was built from."""
        return self.rows

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.close()


class Feed:
    """One refresh loop shared by every watcher; started by the first, ended by the last."""

    def __init__(
        self,
        build: Callable[[], Awaitable[View]],
        *,
        interval_seconds: float = 0.5,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        close: Callable[[], Awaitable[None]] | None = None,
        rows: Callable[[], Sequence[PositionRow]] | None = None,
    ) -> None:
        self._build = build
        self._rows = rows
        self._interval = interval_seconds
        self.keepalive_seconds = keepalive_seconds
        self._close = close
        self._watchers: set[asyncio.Queue[str | None]] = set()
        self._latest: str | None = None
        self._key: Any = None
        self._task: asyncio.Task[None] | None = None

    async def view(self) -> View:
        """A view built now (the page's first paint, `view.json`)."""
        return await self._build()

    def rows(self) -> Sequence[PositionRow] | None:
        """The positions the last view was built from (None: not known to this feed)."""
        return None if self._rows is None else self._rows()

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator["asyncio.Queue[str | None]"]:
        """A queue that holds the newest view (JSON) each time it changes, the current one
        first; None when the feed ends (`end`): the watcher should stop then."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=1)
        if self._latest is not None:
            queue.put_nowait(self._latest)
        self._watchers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh(), name="tradecore-dashboard")
        try:
            yield queue
        finally:
            self._watchers.discard(queue)
            if not self._watchers:
                await self.stop()

    async def _refresh(self) -> None:
        while self._watchers:
            try:
                view = await self._build()
            except Exception as exc:  # a bug in a view must not end the feed
                logger.opt(exception=exc).warning("the dashboard view failed")
                view = {"error": f"{type(exc).__name__}: {exc}"}
            key = digest_key(view)
            if key != self._key:
                self._key = key
                self._latest = json.dumps(view)
                for queue in list(self._watchers):
                    _replace(queue, self._latest)
            await asyncio.sleep(self._interval)  # wall time, whatever clock the bot runs on

    def end(self) -> None:
        """Tell every watcher to stop (the server shuts down: an open page must not hold
        it up)."""
        for queue in list(self._watchers):
            _replace(queue, None)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._key = self._latest = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._close is not None:
            await self._close()


def account_feeds(
    accounts: Sequence[Account],
    *,
    now: Callable[[], datetime],
    aged: AgedParams | None = None,
    interval_seconds: float = 0.5,
) -> dict[str, tuple[str, "Feed"]]:
    """A feed per account (`accounts.discover_accounts`), for `mount_accounts`: fingerprint ->
    (database, feed); each reads its own database on its own connection."""
    feeds = {}
    for a in accounts:
        views = DatabaseViews(a.url, now=now, aged=aged, account=a.key)
        feed = Feed(
            views,
            interval_seconds=interval_seconds,
            close=views.close,
            rows=views.positions_read,
        )
        feeds[a.key] = (a.database, feed)
    return feeds


async def accounts_overview(feeds: Mapping[str, tuple[str, "Feed"]]) -> dict[str, Any]:
    """Each account's open positions, unprotected now and realized PnL, as its own page shows
    them, keyed by fingerprint; and their total, where an account found in several databases
    (a restored backup) counts once and each of its positions once (`accounts.count_once`),
    with a warning. `feeds`: key -> (database, feed)."""
    accounts: dict[str, dict[str, Any]] = {}
    rows: dict[str, Sequence[PositionRow] | None] = {}
    views: dict[str, View] = {}
    now = None
    for key, (database, feed) in feeds.items():
        view = views[key] = await feed.view()
        now = now or view.get("now")
        error = view.get("error")
        rows[key] = None if error else feed.rows()
        accounts[key] = {
            "database": database,
            "open_positions": None if error else len(view["positions"]),
            "unprotected": None if error else view["unprotected"]["count"],
            "pnl_realized": None if error else view["pnl"]["realized"],
            "status": None if error else view["health"]["status"],
            "error": error,
        }
    counted = count_once(
        [
            Copy(
                key=key,
                database=database,
                fingerprint=fingerprint_of(key, database),
                journal_at=None,
                positions=rows[key],
            )
            for key, (database, _) in feeds.items()
        ]
    )
    read = {k: views[k] for k, a in accounts.items() if a["error"] is None}
    realized, open_positions, unprotected = Decimal(0), 0, 0
    for key, view in read.items():
        known = rows[key]
        ids = counted.positions[key]
        if known is None:  # a feed that does not say its positions: its own figures
            realized += Decimal(view["pnl"]["realized"])
            open_positions += len(view["positions"])
            unprotected += view["unprotected"]["count"]
            continue
        realized += pnl([p for p in known if p.id in ids]).total
        open_positions += sum(1 for p in view["positions"] if p["id"] in ids)
        unprotected += sum(1 for i in view["unprotected"]["position_ids"] if i in ids)
    total = {
        "accounts": counted.accounts,
        "unreadable": [key for key, a in accounts.items() if a["error"] is not None],
        "open_positions": open_positions,
        "unprotected": unprotected,
        "pnl_realized": format(realized, "f"),
        "warnings": list(counted.warnings),
    }
    return {"now": now, "accounts": accounts, "total": total}


def _replace(queue: "asyncio.Queue[str | None]", payload: str | None) -> None:
    """Keep only the newest view: a slow page skips views, never falls behind."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(payload)
