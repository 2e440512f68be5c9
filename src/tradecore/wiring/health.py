"""`/health` (200 or 503, JSON) and `/metrics` (Prometheus text) over aiohttp.

Both read what the process already knows — the kernel, the journal's counters and the event
tee (`tradecore.adapters.reporting.telemetry`) — plus one count of open positions from the
database, made for each check. What is healthy is decided in the library
(`tradecore.app.health.judge`); this module gathers the facts and serves the answer. Nothing
here calls the venue: a health probe must not spend the account's rate limit.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
from aiohttp import web
from loguru import logger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.app.backoff import FIRST_SECONDS, backoff_seconds
from tradecore.app.health import HealthFacts, judge, probe
from tradecore.app.protection import ProtectionView
from tradecore.domain.events import EventType
from tradecore.ports.clock import Clock

_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@attrs.define(kw_only=True)
class HealthSources:
    telemetry: Telemetry
    clock: Clock
    venue: str
    mode: str
    stream: str  # "websocket", "replay" or "none"
    running: Callable[[], bool]
    started_at: Callable[[], datetime | None]
    open_positions: Callable[[], Awaitable[int]]
    journal: Any = None  # the Journal (`available`, `stats`); None before it opens
    loops: Callable[[], Mapping[str, str]] = dict  # the kernel's loops and their states
    writes_waiting: Callable[[], int] = lambda: 0  # store writes held for the database
    positions: int | None = None  # the last count read
    # the application's view of what is unprotected (the kernel's); the runner serves it
    protection: Callable[[], ProtectionView] | None = None

    def unprotected(self) -> tuple[int, datetime | None, list[str]]:
        """How many positions are unprotected, as of which pass, and their symbols: the
        application's view once a pass ended, else what the guard's last event said."""
        view = self.protection() if self.protection is not None else None
        if view is not None and view.checked_at is not None:
            return view.unprotected, view.checked_at, sorted(view.symbols)
        t = self.telemetry
        return t.unprotected_last_check, t.last_protection_check, []


class Health:
    def __init__(self, sources: HealthSources) -> None:
        self.sources = sources
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_Collector(sources))

    async def refresh(self) -> None:
        """Ask the database, now: its answer is what this check says about it."""
        self.sources.positions = await probe(self.sources.open_positions)

    async def report(self) -> tuple[int, dict[str, Any]]:
        await self.refresh()
        s, t = self.sources, self.sources.telemetry
        unprotected, checked_at, bare = s.unprotected()
        facts = HealthFacts(
            now=s.clock.now(),
            mode=s.mode,
            venue=s.venue,
            running=s.running(),
            started_at=s.started_at(),
            loops=s.loops(),
            positions=s.positions,
            writes_waiting=s.writes_waiting(),
            journal=_journal_figures(s.journal),
            venue_failure=t.last_venue_failure,
            venue_read_ok=t.last_venue_read,
            marks_connected=t.marks_connected,
            stream=s.stream,
            stream_connected=t.stream_connected,
            last_signal_at=t.last_signal_at,
            unprotected=unprotected,
            last_protection_check=checked_at,
            unprotected_symbols=bare,
        )
        return judge(facts)

    async def metrics(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)


def _journal_figures(journal: Any) -> dict[str, Any]:
    if journal is None:
        return {}
    return {
        "events_written": journal.stats.written,
        "events_spooled": journal.stats.spooled,
        "events_replayed": journal.stats.replayed,
        "spool_pending": journal.spool_pending,
    }


class _Collector(Collector):
    """Reads the figures at scrape time; no global registry, no state of its own."""

    def __init__(self, sources: HealthSources) -> None:
        self._s = sources

    def collect(self) -> Iterator[Metric]:
        s, t = self._s, self._s.telemetry
        yield _gauge("tradecore_positions_open", "Open positions in the journal", s.positions or 0)
        yield _gauge(
            "tradecore_positions_unprotected",
            "Positions the last protection pass left without a stop",
            s.unprotected()[0],
        )
        yield _counter("tradecore_stop_moves", "Stops replaced or moved", t.stop_moves)
        yield _counter(
            "tradecore_trailing_activations",
            "Trailing stops activated",
            t.count(EventType.TRAILING_STOP_ACTIVATED),
        )
        written = spooled = 0
        if s.journal is not None:
            written, spooled = s.journal.stats.written, s.journal.stats.spooled
        yield _counter("tradecore_events_written", "Events written to the database", written)
        yield _counter("tradecore_events_spooled", "Events spooled while the DB was down", spooled)
        yield _labelled("tradecore_events", "Events by type", "type", t.by_type)
        yield _labelled("tradecore_errors", "Error and critical events by kind", "kind", t.errors)
        yield _latencies(t)
        started = s.started_at()
        uptime = (s.clock.now() - started).total_seconds() if started else 0.0
        yield _gauge("tradecore_uptime_seconds", "Seconds since the kernel started", uptime)
        yield _gauge("tradecore_up", "1 while the kernel runs", 1 if s.running() else 0)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _labelled(name: str, text: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, text, labels=[label])
    for key, value in sorted(counts.items()):
        family.add_metric([key], value)
    return family


def _latencies(t: Telemetry) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "tradecore_order_latency_seconds",
        "Seconds from an open's start to its entry fill (entry) and from the fill to the stop",
        labels=["operation"],
    )
    for name, samples in sorted(t.latencies.items()):
        values = list(samples)
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in _BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric([name], buckets, sum_value=sum(values))
    return family


class HealthServer:
    """The aiohttp app on host:port.

    The socket is bound with SO_REUSEADDR, so a restart right after a crash takes the port
    back although the last probe's connection is still in TIME_WAIT (about a minute). A port
    held by another process is tried again in the background, one log line per attempt,
    backoff capped at 30 s: the bot trades meanwhile, `/health` is simply not there yet.
    """

    def __init__(
        self,
        health: Health | None,
        *,
        host: str,
        port: int,
        retry_seconds: float = FIRST_SECONDS,
        mounts: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        self.health = health  # None: only what `mounts` adds (the `dashboard` command)
        self.host = host
        self.port = port
        self._mounts = tuple(mounts)  # more routes on the same server (the dashboard)
        self._retry_seconds = retry_seconds
        self._runner: web.AppRunner | None = None
        self._retrying: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Listen now if the port is free, else keep trying in the background."""
        error = await self._listen()
        if error is not None:
            self._retrying = asyncio.create_task(self._retry(error), name="tradecore-health")

    async def _listen(self) -> OSError | None:
        app = web.Application()
        if self.health is not None:
            app.router.add_get("/health", self._health)
            app.router.add_get("/metrics", self._metrics)
        for mount in self._mounts:
            mount(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
        except OSError as error:
            await runner.cleanup()
            return error
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return None

    async def _retry(self, error: OSError) -> None:
        attempt = 0
        failure: OSError | None = error
        while failure is not None:
            attempt += 1
            delay = backoff_seconds(attempt, first=self._retry_seconds)
            logger.warning(
                "the health endpoint cannot listen on {}:{} ({}); trying again in {:.0f} s "
                "(attempt {}); trading goes on. Stop whatever holds the port, or set "
                "health.port (0 turns the endpoint off)",
                self.host,
                self.port,
                failure.strerror or failure,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)
            failure = await self._listen()
        logger.info("the health endpoint listens on {}:{}", self.host, self.port)

    async def stop(self) -> None:
        retrying, self._retrying = self._retrying, None
        if retrying is not None:
            retrying.cancel()
            await asyncio.gather(retrying, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _health(self, _: web.Request) -> web.Response:
        assert self.health is not None
        status, body = await self.health.report()
        return web.json_response(body, status=status)

    async def _metrics(self, _: web.Request) -> web.Response:
        assert self.health is not None
        text = await self.health.metrics()
        return web.Response(body=text, headers={"Content-Type": "text/plain; version=0.0.4"})
