"""The journal is compared with the venue at quiescence: nothing in flight, not mid-open.

Binance seed 80 ends 0.3 s into a wave's open (the wave's check falls inside the quiet
phase): the comparison ran while the entry was in flight and reported the journal's
pending entry as a mismatch. Issue 10, item 2: "at quiescence (no fault active, nothing in
flight, after one guard and one sync pass) the journal equals the venue".
"""

import attrs

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world, run_world


async def test_the_journal_is_not_compared_while_a_waves_open_is_in_flight() -> None:
    world = attrs.evolve(plan_world(80, Venue.BINANCE), incidents=())
    result = await run_world(world)
    assert [str(v) for v in result.violations if v.invariant == "journal_mismatch"] == []
