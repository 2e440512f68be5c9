"""A graceful stop is bounded by the work in flight, not by what the bot was waiting for
(issue 10, story 12): a stop during a wave's monitoring window — signals no longer coming,
nothing opened yet — ends at once with `bot_stopped`, not after the window's four minutes
(past systemd's stop timeout, whose SIGKILL would leave no `bot_stopped`)."""

from tradecore.adapters.virtual_time import run_driven
from tradecore.app.kernel import Kernel
from tradecore.domain.events import EventType
from tradecore.domain.waves import next_check_after
from tradecore.testing import FakeVenue

from .conftest import Database
from .harness import build_app, pass_time


async def test_a_stop_while_a_wave_waits_for_its_signals_ends_at_once_with_bot_stopped(
    venue: FakeVenue, database: Database
) -> None:
    app = build_app(venue, database.store)
    kernel = Kernel(app.parts)
    await run_driven(app.clock, app.work, kernel.start())
    check = next_check_after(app.clock.now())
    await pass_time(app, (check - app.clock.now()).total_seconds() + 10)
    assert EventType.WAVE_MONITORING_STARTED in app.sink.types()  # no signal has come

    asked = app.clock.now()
    await run_driven(app.clock, app.work, kernel.stop("operator"))

    assert (app.clock.now() - asked).total_seconds() < 10  # not the 240 s window
    assert app.sink.types()[-1] is EventType.BOT_STOPPED
    assert EventType.WAVE_NOT_FOUND not in app.sink.types()  # the wave was not given up on
