"""Beyond the CI seeds, binance 2869 (reduced to four incidents): a trailing move's process
died between placing the new stop and recording it, during a 418 ban on order look-ups; the
restart could not learn whether the venue took the new stop, and as its level was no
tighter than the position's (the same level, resumed earlier), ended the operation with no
event: the order stood unnamed until the position's stop fired and the venue expired it
(`journal_mismatch`). The restart now records, at the level that stays, that the move's new
stop (named by its client id) may stand."""

import asyncio

import attrs

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world
from tradecore.testing.simulation.simulator import run_world


def test_an_interrupted_move_the_venue_will_not_tell_about_is_named_in_the_journal() -> None:
    world = plan_world(2869, Venue.BINANCE, hours=8.04)
    kept = {73, 75, 81, 83}
    world = attrs.evolve(world, incidents=tuple(i for i in world.incidents if i.number in kept))
    result = asyncio.run(run_world(world))
    assert result.counts["fault:ban_418"] == 1
    assert result.violations == ()
