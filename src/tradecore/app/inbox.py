"""The signals waiting for their wave, and the one event that gives each signal its fate.

Every signal received ends in exactly one fate (`domain.signals.Fate`; issue 12): the inbox
records those decided on arrival or when a wave is taken, the wave processor the rest.
"""

from collections.abc import Iterable
from datetime import datetime

from tradecore.domain.events import EventType
from tradecore.domain.signals import Fate, Signal
from tradecore.domain.waves import QUARTER_HOURS, ArrivalRefusal, WaveSchedule, refuse_arrival

from .recorder import Recorder


def wave_correlation(wave: datetime) -> str:
    """One id per wave; seconds appear only for waves shorter than a minute (test runs)."""
    return f"wave-{wave:%Y%m%dT%H%M}" + (f"{wave:%S}" if wave.second else "")


class SignalInbox:
    """Signals as they arrive, kept by wave until the wave is taken.

    What it holds is bounded (`domain.waves.refuse_arrival`): a signal for a wave already
    taken expires, one for a wave more than one wave ahead is refused, and taking a wave
    expires whatever an older wave still held (its check never ran). Each of those is the
    signal's fate, recorded here; the wave processor records the fates of the signals it
    takes.
    """

    def __init__(self, recorder: Recorder, schedule: WaveSchedule = QUARTER_HOURS) -> None:
        self._recorder = recorder
        self._schedule = schedule
        self._by_wave: dict[datetime, dict[str, Signal]] = {}
        self._taken_through: datetime | None = None
        self.last_signal_at: datetime | None = None
        self.received = 0

    def put(self, signal: Signal, *, at: datetime) -> ArrivalRefusal | None:
        """Hold `signal` for its wave, or record its fate and say why not."""
        self.last_signal_at = at
        self.received += 1
        held = self._by_wave.get(signal.wave, {})
        refusal = refuse_arrival(
            signal.wave,
            now=at,
            taken_through=self._taken_through,
            held=len(held),
            schedule=self._schedule,
        )
        if refusal is not None:
            event = EventType.SIGNAL_EXPIRED if refusal.fate is Fate.EXPIRED else None
            record_fate(
                self._recorder,
                event or EventType.SIGNAL_FILTERED,
                signal,
                refusal.fate,
                reason=refusal.reason,
                detail=refusal.detail,
            )
            return refusal
        self._by_wave.setdefault(signal.wave, {}).setdefault(signal.id, signal)
        return None

    def of(self, wave: datetime) -> list[Signal]:
        return list(self._by_wave.get(wave, {}).values())

    def take(self, wave: datetime) -> list[Signal]:
        """The wave's signals, for its processor to give each a fate. The wave and every
        older one are closed: a signal an older wave still held expires (its check never
        read it), and one arriving later for them expires on arrival."""
        signals = list(self._by_wave.pop(wave, {}).values())
        for old in sorted(w for w in self._by_wave if w < wave):
            self._expire(self._by_wave.pop(old).values(), "wave_never_processed")
        if self._taken_through is None or wave > self._taken_through:
            self._taken_through = wave
        return signals

    def expire_all(self, reason: str) -> int:
        """Give every signal still held the fate `expired` (the bot stops: nothing will read
        them; the signal service does not send them again)."""
        held = [s for wave in sorted(self._by_wave) for s in self._by_wave[wave].values()]
        self._by_wave.clear()
        self._expire(held, reason)
        return len(held)

    @property
    def held(self) -> int:
        return sum(len(signals) for signals in self._by_wave.values())

    def _expire(self, signals: Iterable[Signal], reason: str) -> None:
        for signal in signals:
            record_fate(
                self._recorder,
                EventType.SIGNAL_EXPIRED,
                signal,
                Fate.EXPIRED,
                reason=reason,
                detail=f"wave {signal.wave.isoformat()} was not processed",
            )


def record_fate(
    recorder: Recorder,
    event_type: EventType,
    signal: Signal,
    fate: Fate,
    *,
    correlation: str | None = None,
    **data: object,
) -> None:
    """The one event that says how `signal` ended."""
    position_id = data.pop("position_id", None)
    recorder.record(
        event_type,
        correlation_id=correlation or wave_correlation(signal.wave),
        symbol=signal.symbol,
        exchange=signal.venue.value,
        data={
            "signal_id": signal.id,
            "fate": fate.value,
            **data,
            **({"position_id": position_id} if position_id else {}),
        },
    )
