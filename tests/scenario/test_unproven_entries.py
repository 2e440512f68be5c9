"""An entry whose state the venue has not proven holds its place until it is resolved.

The open leaves such an entry in flight (`PENDING_ENTRY`) and a later guard or sync pass
resolves it — and it may well have filled (Bybit's create only acknowledges; its look-ups may
not list the order yet). So whatever reads the open's answer must not take "not proven" for
"nothing opened": a wave must not open a reserve candidate in its place, or the wave ends
with more positions than `max_trades_per_wave` once the entry proves filled.
"""

import pytest

from tradecore.domain.events import EventType
from tradecore.domain.positions import PositionState

from .harness import App
from .test_signal_fates import fates
from .test_waves import WAVE, wave_app, wave_of_signals

__all__ = ["wave_app"]  # the fixture, imported for pytest


@pytest.mark.parametrize("wave_app", ["bybit"], indirect=True)
async def test_a_wave_whose_entries_are_unproven_opens_no_reserve_in_their_place(
    wave_app: App,
) -> None:
    app = wave_app
    target = app.parts.settings.waves.max_trades_per_wave
    signals = wave_of_signals(app.venue.exchange.venue)
    for signal in signals:
        app.services.inbox.put(signal, at=app.clock.now())
    app.venue.lag_listing(3600)  # no entry is listed within the read-back: each is unproven

    report = await app.run(app.waves.process(WAVE))
    await app.run(app.guard.check())  # resolves them: every entry did fill

    active = [
        p for p in await app.store.positions.open_positions() if p.state is PositionState.ACTIVE
    ]
    held = [p for p in app.venue.engine.positions() if p.quantity > 0]
    assert len(held) <= target, f"{len(held)} positions on the venue, the wave allows {target}"
    assert len(active) == len(held) == target
    assert report.failed == 0  # nothing the wave sent failed
    found = fates(app)
    assert {i: len(e) for i, e in found.items() if len(e) != 1} == {}
    assert app.sink.of(EventType.SIGNAL_EXECUTION_FAILED) == []
