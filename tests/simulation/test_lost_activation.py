"""Beyond the CI seeds, binance 2508 (its one incident): a short's trailing stop activated on
a mark of 3,220.04 and the process died at the journal's write of that activation, before
the move left. The restart trailed from the journal's state — not activated — and the marks
never came back to the activation price: the stop stayed at the initial 3,367.61 for the
rest of the run (`trailing_stuck`). The restart now asks the venue for the marks since the
state's last change (mark-price klines) and takes them in."""

import asyncio

import attrs

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world
from tradecore.testing.simulation.simulator import run_world


def test_an_activation_a_crash_took_before_the_journal_had_it_is_caught_up_on_restart() -> None:
    world = plan_world(2508, Venue.BINANCE, hours=20.77)
    world = attrs.evolve(world, incidents=tuple(i for i in world.incidents if i.number == 47))
    result = asyncio.run(run_world(world))
    assert result.counts["crash:store.command:before"] == 1
    assert result.violations == ()
