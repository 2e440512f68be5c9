"""Wave processor (SPEC §2): at each check time, the due wave's signals become positions.

At minutes 5, 20, 35, 50 the due wave is the quarter hour before the current one (the
defaults of `settings.waves.schedule`; a test run may have a wave every few seconds). The
processor claims it in the journal (so a wave is processed once, across restarts), waits up
to the monitoring window for its signals, filters them (every refusal an event with its
reason), ranks them and takes trades plus a 50 % reserve, sizes each, and opens them
concurrently — starting a reserve candidate whenever one fails — until the wave's target is
reached. One correlation id per wave ties its events together.

A check the database keeps from running (the wave cannot be claimed, the open positions
cannot be read) is tried again every `poll_seconds` until the wave's monitoring window has
passed; then the wave is given up with a `wave_skipped` event naming the reason, and an
alert. Meanwhile nothing else waits: trailing, protection and closes go on.
"""

import asyncio
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from tradecore.domain import sizing
from tradecore.domain.events import EventType, Severity
from tradecore.domain.numbers import ZERO
from tradecore.domain.orders import Balance, VenuePosition
from tradecore.domain.positions import Position
from tradecore.domain.precision import MarketRules
from tradecore.domain.signals import Fate, Signal
from tradecore.domain.waves import (
    FilterParams,
    TradingFacts,
    WaveReport,
    due_wave,
    filter_signal,
    next_check_after,
    select,
)
from tradecore.ports.alerts import Alert, Alerter
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store, StoreUnavailable

from .inbox import SignalInbox, record_fate
from .inbox import wave_correlation as _correlation
from .leverage import MarginDesk, NotPrepared, SymbolMargin
from .open_position import OpenPosition, OpenRequest
from .recorder import Recorder
from .settings import TradingSettings

Opened = Callable[[Position], Awaitable[None]]


class WaveProcessor:
    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        opener: OpenPosition,
        recorder: Recorder,
        clock: Clock,
        rules: Mapping[str, MarketRules],
        settings: TradingSettings,
        inbox: SignalInbox,
        *,
        on_opened: Opened | None = None,
        alerter: Alerter | None = None,
        margin: MarginDesk | None = None,
        claimant: str | None = None,
    ) -> None:
        self._margin = margin
        # who claims this process's waves: a claim found again by the same claimant (its
        # answer lost after the commit) is its own, not another session's
        self._claimant = claimant or _claimant()
        self._exchange = exchange
        self._store = store
        self._opener = opener
        self._recorder = recorder
        self._clock = clock
        self._rules = rules
        self._settings = settings
        self._inbox = inbox
        self._on_opened = on_opened
        self._alerter = alerter
        self._claimed: set[datetime] = set()  # claimed by this process, not yet finished
        self._taken: dict[datetime, list[Signal]] = {}  # taken from the inbox, not yet settled
        self._traded: dict[datetime, WaveReport] = {}  # traded, its completion not yet written
        # what the wave's opens came to so far, carried across the passes of a retried check
        self._progress: dict[datetime, Counter[Fate]] = {}
        self._busy: set[datetime] = set()  # waves a `process` call is at right now
        self.reports: list[WaveReport] = []
        self._processing = asyncio.Event()
        self._processing.set()  # set = idle
        self._stopping: asyncio.Event | None = None  # the kernel's, while `run` runs
        self._settled: set[str] = set()  # ids of the wave in progress given their fate

    async def run(self, *, stopping: asyncio.Event) -> None:
        """Process each due wave at its check time until `stopping` is set."""
        self._stopping = stopping
        schedule = self._settings.waves.schedule
        while not stopping.is_set():
            check = next_check_after(self._clock.now(), schedule)
            await self._clock.sleep((check - self._clock.now()).total_seconds())
            if stopping.is_set():
                return
            wave = due_wave(check, schedule)
            try:
                await self._check(wave, check)
            except Exception as error:  # a bug in one wave must not end every later one
                self._claimed.discard(wave)
                self._progress.pop(wave, None)
                self._event(
                    EventType.CRITICAL_ERROR,
                    _correlation(wave),
                    wave=wave,
                    error=f"the wave check failed: {error!r}"[:1000],
                )

    async def _check(self, wave: datetime, check: datetime) -> None:
        """Process `wave`, trying again while the database keeps it from running, until its
        window has passed; then skip it with an event and an alert."""
        waves = self._settings.waves
        deadline = check + timedelta(seconds=waves.monitoring_window_seconds)
        attempts = 0
        while True:
            try:
                await self.process(wave)
                return
            except StoreUnavailable as error:
                attempts += 1
                reason = f"database unavailable: {error}"
            if self._stop_requested() or self._clock.now() >= deadline:
                await self._skip(wave, check, reason, attempts)
                return
            if attempts == 1:
                self._event(
                    EventType.HEALTH_CHECK_FAILED,
                    _correlation(wave),
                    wave=wave,
                    component="database",
                    error=f"wave check waits for the database (until {deadline:%H:%M:%S}): "
                    f"{reason}",
                )
            await self._clock.sleep(waves.poll_seconds)

    async def _skip(self, wave: datetime, check: datetime, reason: str, attempts: int) -> None:
        self._claimed.discard(wave)
        self._progress.pop(wave, None)
        self._traded.pop(wave, None)
        held = self._taken.pop(wave, None)
        if held is None:
            held = self._inbox.take(wave)
        for signal in held:  # those the failed attempts had not yet settled
            if signal.id not in self._settled:
                self._fate(
                    EventType.SIGNAL_EXPIRED,
                    signal,
                    Fate.EXPIRED,
                    _correlation(wave),
                    reason="wave_skipped",
                    detail=f"its wave's check could not run: {reason}"[:300],
                )
        window = self._settings.waves.monitoring_window_seconds
        self._event(
            EventType.WAVE_SKIPPED,
            _correlation(wave),
            wave=wave,
            check=check,
            window_seconds=window,
            attempts=attempts,
            reason=reason,
        )
        self._done(WaveReport(wave=wave, found=False, skipped=True))
        if self._alerter is not None:
            await self._alerter.send(
                Alert(
                    key=f"wave-skipped-{wave:%Y%m%dT%H%M}" + (f"{wave:%S}" if wave.second else ""),
                    severity=Severity.ERROR,
                    title=f"wave {wave:%H:%M} skipped",
                    text=f"its check at {check:%H:%M:%S} could not run within the {window:g} s "
                    f"window ({attempts} attempts): {reason}",
                )
            )

    async def idle(self) -> None:
        """Return once no wave is being processed (a stop lets the wave's opens finish)."""
        await self._processing.wait()

    async def process(self, wave: datetime) -> WaveReport:
        """Process `wave` (claimed once, ever). A call while another is at the same wave in
        this process — which holds the wave claimed across its retries — is a duplicate: it
        takes none of the wave's signals and opens nothing."""
        if wave in self._busy:
            self._event(
                EventType.WAVE_DUPLICATE_DETECTED,
                _correlation(wave),
                wave=wave,
                signals=len(self._inbox.of(wave)),
                reason="being processed by this process",
            )
            return self._done(WaveReport(wave=wave, duplicate=True))
        self._busy.add(wave)
        self._processing.clear()
        try:
            return await self._process(wave)
        finally:
            self._busy.discard(wave)
            if not self._busy:
                self._processing.set()

    async def _process(self, wave: datetime) -> WaveReport:
        correlation = _correlation(wave)
        retried = wave in self._claimed  # claimed before the database failed this check
        if not retried:
            if not await self._store.waves.claim(wave, at=self._clock.now(), by=self._claimant):
                signals = self._inbox.take(wave)
                self._event(
                    EventType.WAVE_DUPLICATE_DETECTED, correlation, wave=wave, signals=len(signals)
                )
                for signal in signals:  # a second session on the same database: seen before
                    self._fate(
                        EventType.SIGNAL_FILTERED,
                        signal,
                        Fate.DUPLICATE,
                        correlation,
                        reason="wave_already_processed",
                        detail=f"wave {wave.isoformat()} was processed before",
                    )
                return self._done(WaveReport(wave=wave, duplicate=True, signals=len(signals)))
            self._claimed.add(wave)
            self._event(EventType.WAVE_MONITORING_STARTED, correlation, wave=wave)
        if wave in self._traded:  # traded; only its completion met the database down
            return await self._finish(wave, self._traded[wave], correlation)
        held = self._taken.get(wave)
        first_try = held is None
        if held is None:
            await self._await_signals(wave)
            held = self._taken[wave] = self._inbox.take(wave)
        signals = held
        if not signals and self._stop_requested():
            # The bot stops and takes no more signals: waiting out the window would only
            # hold the stop up. The wave stays claimed and unfinished, as a crash leaves it.
            return self._done(WaveReport(wave=wave, found=False))
        if not signals:
            self._event(
                EventType.WAVE_NOT_FOUND,
                correlation,
                wave=wave,
                window_seconds=self._settings.waves.monitoring_window_seconds,
            )
            await self._complete(wave, {"signals": 0})
            self._taken.pop(wave, None)
            self._claimed.discard(wave)
            return self._done(WaveReport(wave=wave, found=False))
        if first_try:  # a check tried again after an outage detected it already
            self._event(EventType.WAVE_DETECTED, correlation, wave=wave, signals=len(signals))
        report = await self._trade_each_to_its_fate(wave, signals, correlation)
        self._traded[wave] = report
        return await self._finish(wave, report, correlation)

    async def _finish(self, wave: datetime, report: WaveReport, correlation: str) -> WaveReport:
        self._event(
            EventType.WAVE_COMPLETED,
            correlation,
            wave=wave,
            signals=report.signals,
            filtered=report.filtered,
            candidates=report.candidates,
            opened=report.opened,
            failed=report.failed,
            unproven=report.unproven,
        )
        await self._complete(
            wave,
            {
                "signals": report.signals,
                "filtered": report.filtered,
                "opened": report.opened,
                "failed": report.failed,
                "unproven": report.unproven,
            },
        )
        self._traded.pop(wave, None)
        self._taken.pop(wave, None)
        self._progress.pop(wave, None)
        self._claimed.discard(wave)
        return self._done(report)

    # -- steps ------------------------------------------------------------------------------

    async def _await_signals(self, wave: datetime) -> None:
        window = self._settings.waves.monitoring_window_seconds
        poll = self._settings.waves.poll_seconds
        waited = 0.0
        while not self._inbox.of(wave) and waited < window:
            if self._stop_requested():
                return
            await self._clock.sleep(poll)
            waited += poll

    def _stop_requested(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def _trade_each_to_its_fate(
        self, wave: datetime, signals: list[Signal], correlation: str
    ) -> WaveReport:
        """`_trade`; a signal it had not settled when it failed expires, with the error."""
        self._settled.clear()
        try:
            return await self._trade(wave, signals, correlation)
        except StoreUnavailable:
            # the check is tried again inside its window (`_check`): what is not settled yet
            # waits for it, and expires with the wave if the window passes
            self._taken[wave] = [s for s in signals if s.id not in self._settled]
            raise
        except BaseException as error:
            for signal in signals:
                if signal.id not in self._settled:
                    self._fate(
                        EventType.SIGNAL_EXPIRED,
                        signal,
                        Fate.EXPIRED,
                        correlation,
                        reason="wave_interrupted",
                        detail=f"the wave stopped: {type(error).__name__}: {error}"[:300],
                    )
            raise

    async def _trade(self, wave: datetime, signals: list[Signal], correlation: str) -> WaveReport:
        facts = await self._facts()
        passed: list[Signal] = []
        rejections: dict[str, int] = {}
        for signal in signals:
            refusal = filter_signal(signal, self._filter_params(), facts)
            if refusal is None:
                passed.append(signal)
                continue
            rejections[refusal.reason.value] = rejections.get(refusal.reason.value, 0) + 1
            self._fate(
                EventType.SIGNAL_FILTERED,
                signal,
                Fate.FILTERED,
                correlation,
                reason=refusal.reason.value,
                detail=refusal.detail,
            )
        waves = self._settings.waves
        chosen = select(passed, waves.max_trades_per_wave, waves.reserve_percent)
        candidates = chosen.candidates
        self._cut(chosen.duplicates, chosen.ranked_out, len(candidates), correlation)
        opened, failed, unproven, unused = await self._open_until_target(
            wave, candidates, facts, correlation, rejections
        )
        for signal in unused:
            self._fate(
                EventType.SIGNAL_RANKED_OUT,
                signal,
                Fate.RESERVE_UNUSED,
                correlation,
                reason="reserve_not_needed",
                detail=f"the wave reached {waves.max_trades_per_wave} positions without it",
            )
        return WaveReport(
            wave=wave,
            signals=len(signals),
            filtered=len(signals) - len(passed),
            candidates=len(candidates),
            opened=opened,
            failed=failed,
            unproven=unproven,
            rejections=rejections,
        )

    def _cut(
        self,
        duplicates: Iterable[Signal],
        ranked_out: Iterable[Signal],
        candidates: int,
        correlation: str,
    ) -> None:
        for signal in duplicates:
            self._fate(
                EventType.SIGNAL_FILTERED,
                signal,
                Fate.DUPLICATE,
                correlation,
                reason="duplicate_symbol",
                detail=f"a better-ranked signal for {signal.symbol} is in this wave",
            )
        for signal in ranked_out:
            self._fate(
                EventType.SIGNAL_RANKED_OUT,
                signal,
                Fate.RANKED_OUT,
                correlation,
                reason="ranked_out",
                detail=f"ranked below the wave's {candidates} candidates",
            )

    async def _open_until_target(
        self,
        wave: datetime,
        candidates: tuple[Signal, ...],
        facts: TradingFacts,
        correlation: str,
        rejections: dict[str, int],
    ) -> tuple[int, int, int, list[Signal]]:
        """Open the best candidates concurrently; each failure starts the next in reserve.

        An entry left unproven is not a failure: it may have filled, so it keeps its place
        (no reserve opens for it) until a guard or sync pass resolves it.
        The wave's counts are carried across the passes of a retried check: a second pass
        opens only what the first left of `max_trades_per_wave`. An open that raises (the
        database down under it) lets every other open of the pass run to its end and count
        before the error goes up, so no open of this pass runs on beside the next.
        Returns the opened, failed and unproven counts and the reserve the wave did not need."""
        target = self._settings.waves.max_trades_per_wave
        queue = list(candidates)
        account, marks, margins, held = await self._account_and_marks(facts, candidates)
        running: set[asyncio.Task[Fate]] = set()
        ended = self._progress.setdefault(wave, Counter())
        error: Exception | None = None
        while (queue and error is None) or running:
            while (
                error is None
                and queue
                and len(running) + ended[Fate.OPENED] + ended[Fate.OPEN_UNPROVEN] < target
            ):
                signal = queue.pop(0)
                sized = self._size(
                    signal, marks, margins, account, correlation, rejections, held=held
                )
                if sized is None:
                    ended[Fate.OPEN_FAILED] += 1
                    continue
                account = sized[1]
                running.add(asyncio.create_task(self._open(signal, sized[0], correlation)))
            if not running:
                break
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if failure is None:
                    ended[task.result()] += 1
                elif error is None and isinstance(failure, Exception):
                    error = failure
                elif not isinstance(failure, Exception):
                    raise failure
        if error is not None:
            raise error
        return ended[Fate.OPENED], ended[Fate.OPEN_FAILED], ended[Fate.OPEN_UNPROVEN], queue

    def _size(
        self,
        signal: Signal,
        marks: Mapping[str, Decimal],
        margins: Mapping[str, SymbolMargin | NotPrepared],
        account: sizing.AccountRisk,
        correlation: str,
        rejections: dict[str, int],
        *,
        held: tuple[VenuePosition, ...] | None,
    ) -> tuple[OpenRequest, sizing.AccountRisk] | None:
        rules = self._rules[signal.symbol]
        mark = marks.get(signal.symbol)
        margin = margins.get(signal.symbol)
        if isinstance(margin, NotPrepared):
            rejections["leverage_not_set"] = rejections.get("leverage_not_set", 0) + 1
            self._fate(
                EventType.RISK_LIMITS_EXCEEDED,
                signal,
                Fate.OPEN_FAILED,
                correlation,
                reason="leverage_not_set",
                detail=margin.detail,
            )
            return None
        params = self._settings.sizing
        if margin is not None:  # the leverage the venue confirmed decides the margin
            params = attrs.evolve(params, leverage=margin.leverage)
        decision = sizing.decide(params, rules, mark, account) if mark else None
        if not isinstance(decision, sizing.Accepted):
            reason = decision.reason.value if decision else "no_mark_price"
            rejections[reason] = rejections.get(reason, 0) + 1
            below = decision is not None and decision.reason in (
                sizing.RiskReason.BELOW_MIN_NOTIONAL,
                sizing.RiskReason.BELOW_MIN_QUANTITY,
            )
            self._fate(
                EventType.ORDER_BELOW_MINIMUM if below else EventType.RISK_LIMITS_EXCEEDED,
                signal,
                Fate.OPEN_FAILED,
                correlation,
                reason=reason,
                detail=decision.detail if decision else "no mark price for the symbol",
            )
            return None
        request = OpenRequest(
            symbol=signal.symbol,
            side=signal.side,
            quantity=decision.quantity,
            rules=rules,
            signal_id=signal.id,
            wave=signal.wave,
            correlation_id=correlation,
            mark_price=decision.mark_price,
            venue_positions=held,
        )
        reserved = sizing.AccountRisk(
            open_positions=account.open_positions + 1,
            exposure_usd=account.exposure_usd + decision.notional,
            free_balance=max(account.free_balance - decision.margin, ZERO),
        )
        return request, reserved

    async def _open(self, signal: Signal, request: OpenRequest, correlation: str) -> Fate:
        result = await self._opener.open(request)
        if result.opened and result.position is not None:
            self._fate(
                EventType.SIGNAL_EXECUTED,
                signal,
                Fate.OPENED,
                correlation,
                position_id=result.position.id,
                quantity=result.position.quantity,
            )
            if self._on_opened is not None:
                await self._on_opened(result.position)
            return Fate.OPENED
        if result.unproven and result.position is not None:
            self._fate(
                EventType.SIGNAL_EXECUTED,
                signal,
                Fate.OPEN_UNPROVEN,
                correlation,
                position_id=result.position.id,
                reason=result.reason,
                state=result.position.state.value,
            )
            return Fate.OPEN_UNPROVEN
        self._fate(
            EventType.SIGNAL_EXECUTION_FAILED,
            signal,
            Fate.OPEN_FAILED,
            correlation,
            reason=result.reason,
            state=result.state.value if result.state else None,
        )
        return Fate.OPEN_FAILED

    # -- facts ------------------------------------------------------------------------------

    async def _facts(self) -> TradingFacts:
        venue = self._exchange.venue
        open_positions = [
            p for p in await self._store.positions.open_positions() if p.venue is venue
        ]
        # unproven entries too: they may be open on the venue (docs/domain.md, sizing)
        exposure = sizing.exposure_of(open_positions, self._settings.sizing)
        return TradingFacts(
            markets={(venue, s): r for s, r in self._rules.items()},
            open_symbols=frozenset((venue, p.symbol) for p in open_positions),
            open_positions=len(open_positions),
            exposure_usd=exposure,
        )

    async def _account_and_marks(
        self, facts: TradingFacts, candidates: tuple[Signal, ...]
    ) -> tuple[
        sizing.AccountRisk,
        dict[str, Decimal],
        dict[str, SymbolMargin | NotPrepared],
        tuple[VenuePosition, ...] | None,
    ]:
        """The free balance, every candidate's mark and its leverage (set on the venue before
        its first entry), asked of the venue all at once; with them the venue's positions,
        carried into each open: none opens on a symbol a person holds by hand."""
        symbols = sorted({s.symbol for s in candidates})
        desk = self._margin
        answers, prepared = await asyncio.gather(
            asyncio.gather(
                self._exchange.fetch_balance(),
                self._exchange.fetch_positions(),
                *(self._exchange.fetch_mark_price(symbol) for symbol in symbols),
                return_exceptions=True,
            ),
            # re-read: a person may have changed a symbol's leverage on the venue since
            asyncio.gather(*(desk.prepare(s, reread=True) for s in symbols)) if desk else _none(),
        )
        margins = dict(zip(symbols, prepared or (), strict=False))
        balance, listed, marks = answers[0], answers[1], answers[2:]
        # unread: each open asks the venue itself
        held = tuple(listed) if isinstance(listed, Sequence) else None
        free = balance.free if isinstance(balance, Balance) else ZERO
        account = sizing.AccountRisk(
            open_positions=facts.open_positions,
            exposure_usd=facts.exposure_usd,
            free_balance=free,
        )
        known = {s: m for s, m in zip(symbols, marks, strict=True) if isinstance(m, Decimal)}
        return account, known, margins, held

    def _filter_params(self) -> FilterParams:
        waves = self._settings.waves
        return FilterParams(
            min_score_week=waves.min_score_week,
            min_score_month=waves.min_score_month,
            stop_list=waves.stop_list,
            enabled_venues=frozenset({self._exchange.venue}),
            sizing=self._settings.sizing,
        )

    async def _complete(self, wave: datetime, summary: dict[str, int]) -> None:
        await self._store.waves.complete(wave, at=self._clock.now(), summary=summary)

    def _event(self, event_type: EventType, correlation: str, **data: object) -> None:
        symbol = data.pop("symbol", None)
        position_id = data.pop("position_id", None)
        self._recorder.record(
            event_type,
            correlation_id=correlation,
            symbol=str(symbol) if symbol else None,
            exchange=self._exchange.venue.value,
            data={**data, **({"position_id": position_id} if position_id else {})},
        )

    def _fate(
        self,
        event_type: EventType,
        signal: Signal,
        fate: Fate,
        correlation: str,
        **data: object,
    ) -> None:
        self._settled.add(signal.id)
        record_fate(self._recorder, event_type, signal, fate, correlation=correlation, **data)

    def _done(self, report: WaveReport) -> WaveReport:
        self.reports.append(report)
        return report


async def _none() -> None:
    return None


def _claimant() -> str:
    """Who this process is, in a wave's claim: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
