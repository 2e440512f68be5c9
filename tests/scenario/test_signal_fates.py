"""Every signal the bot receives ends in exactly one fate, and the journal says which.

A fate is the one event that carries `fate` in its data for the signal's id: opened, open
failed, filtered, ranked out, reserve not needed, duplicate, expired or rejected (issue 12,
item 4). Nothing the inbox holds outlives its wave, and a signal for a wave more than one
wave ahead is refused on arrival.
"""

from collections import Counter
from datetime import timedelta

import attrs
import pytest

from tradecore.domain.events import Event, EventType
from tradecore.domain.signals import Signal

from .harness import App, build_app
from .test_waves import WAVE, wave_app, wave_of_signals

__all__ = ["wave_app"]  # the fixture, imported for pytest


def fates(app: App) -> dict[str, list[Event]]:
    """Each signal id's fate events."""
    found: dict[str, list[Event]] = {}
    for event in app.sink.events:
        if "fate" in event.data and event.data.get("signal_id") is not None:
            found.setdefault(str(event.data["signal_id"]), []).append(event)
    return found


def fate_of(app: App, signal: Signal) -> str:
    [event] = fates(app)[signal.id]
    return str(event.data["fate"])


@pytest.mark.parametrize("wave_app", ["binance", "bybit"], indirect=True)
async def test_every_signal_of_a_wave_has_exactly_one_fate(wave_app: App) -> None:
    app = wave_app
    signals = wave_of_signals(app.venue.exchange.venue)
    for signal in signals:
        app.services.inbox.put(signal, at=app.clock.now())

    report = await app.run(app.waves.process(WAVE))

    found = fates(app)
    assert {s.id for s in signals} == set(found), "signals that ended with no recorded fate"
    assert {i: len(e) for i, e in found.items() if len(e) != 1} == {}
    counted = Counter(str(events[0].data["fate"]) for events in found.values())
    assert counted["opened"] == report.opened == 5
    assert counted["ranked_out"] > 0  # passed the filters, below the best seven
    assert counted["duplicate"] > 0  # a lower-scored signal for a symbol already ranked
    assert counted["reserve_unused"] == 2  # 7 candidates, 5 opened at the first try
    assert sum(counted.values()) == len(signals)


async def test_a_signal_for_a_wave_more_than_one_ahead_is_refused_with_its_reason(
    wave_app: App,
) -> None:
    app = wave_app
    [far] = wave_of_signals(app.venue.exchange.venue, count=1)
    far = attrs.evolve(far, wave=WAVE + timedelta(minutes=60))  # the clock is at 09:05

    app.services.inbox.put(far, at=app.clock.now())

    [event] = fates(app)[far.id]
    assert (event.type, event.data["fate"]) == (EventType.SIGNAL_FILTERED, "filtered")
    assert event.data["reason"] == "wave_too_far_ahead"
    assert app.services.inbox.of(far.wave) == []


async def test_a_signal_arriving_after_its_wave_was_taken_expires(wave_app: App) -> None:
    app = wave_app
    early, late = wave_of_signals(app.venue.exchange.venue, count=2)
    app.services.inbox.put(early, at=app.clock.now())
    await app.run(app.waves.process(WAVE))

    app.services.inbox.put(late, at=app.clock.now())

    assert fate_of(app, late) == "expired"
    assert app.services.inbox.of(WAVE) == []


async def test_the_signals_of_a_wave_processed_before_are_duplicates(wave_app: App) -> None:
    app = wave_app
    signals = wave_of_signals(app.venue.exchange.venue, count=3)
    for signal in signals:
        app.services.inbox.put(signal, at=app.clock.now())
    await app.run(app.waves.process(WAVE))
    rerun = build_app(app.venue, app.store)  # a second session on the same database
    for signal in signals:
        rerun.services.inbox.put(signal, at=rerun.clock.now())

    report = await rerun.run(rerun.waves.process(WAVE))

    assert report.duplicate
    assert {fate_of(rerun, s) for s in signals} == {"duplicate"}
    assert rerun.services.inbox.of(WAVE) == []
