"""Beyond the CI seeds, binance 2338 (reduced to its two incidents): a person cancelled a
trailed stop whose level the mark had crossed; the guard closed the position at market —
and the process died as the venue's answer came back, before the journal recorded the exit
order. The restart finished the CLOSE operation as merely "interrupted" without asking the
venue for its order, so the synchronizer found the position gone with none of the bot's
orders behind it: a phantom close, and no event named the bot's market order
(`journal_mismatch`). The restart now looks the operation's order up by its client id and
records it, and the synchronizer's `position_closed` names the order that closed it."""

import asyncio

import attrs

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world
from tradecore.testing.simulation.simulator import run_world


def test_a_crash_right_after_a_market_close_leaves_the_close_named() -> None:
    world = plan_world(2338, Venue.BINANCE, hours=15.33)
    world = attrs.evolve(world, incidents=tuple(i for i in world.incidents if i.number in {94, 96}))
    result = asyncio.run(run_world(world))
    assert result.counts["person:cancel_stop"] == 1
    assert result.violations == ()
