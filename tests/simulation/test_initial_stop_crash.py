"""Initial stop crashes (`world.INITIAL_STOP_CRASH`): the process dies right after the venue
took an open's initial stop, before the bot recorded it (issue 10, story 7). Drawn apart
from the rest of each world, on every venue. A restart that takes the stop standing as the
open's keeps every invariant; one that takes the venue's "already done" answer to the same
stop sent again as a failure (planted story 7: Bybit 34040 "not modified") rolls the
protected position back at market."""

import asyncio
import importlib.util

import attrs
import pytest

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world
from tradecore.testing.simulation.simulator import run_world
from tradecore.testing.simulation.world import INITIAL_STOP_CRASH, Rates, World

HAS_PLANTS = importlib.util.find_spec("tradecore.testing.planted") is not None


def test_initial_stop_crashes_are_drawn_apart_so_the_rest_of_each_world_stays_as_it_was() -> None:
    drawn = {Venue.BINANCE: 0, Venue.BYBIT: 0}
    for venue in drawn:
        for seed in range(20):
            world = plan_world(seed, venue)
            calm = plan_world(seed, venue, rates=Rates(initial_stop_crashes=0))
            crashes = [i for i in world.incidents if i.kind == INITIAL_STOP_CRASH]
            assert [i for i in world.incidents if i not in crashes] == list(calm.incidents)
            assert all(i.number > len(calm.incidents) for i in crashes)
            drawn[venue] += bool(crashes)
    assert all(count >= 3 for count in drawn.values()), drawn  # on both venues


def _crash_alone(seed: int, venue: Venue) -> World:
    world = plan_world(seed, venue)
    crashes = tuple(i for i in world.incidents if i.kind == INITIAL_STOP_CRASH)
    return attrs.evolve(world, incidents=crashes)


@pytest.mark.parametrize(
    ("venue", "seed"),
    [
        (Venue.BINANCE, 4),  # the restart adopts the stop by its operation's client id
        (Venue.BYBIT, 9),  # the restart's move to the same stop is answered 34040: done
    ],
    ids=["binance", "bybit"],
)
def test_a_restart_after_an_initial_stop_crash_keeps_the_stop_that_stands(
    venue: Venue, seed: int
) -> None:
    result = asyncio.run(run_world(_crash_alone(seed, venue)))
    assert result.counts[INITIAL_STOP_CRASH] >= 1
    assert result.violations == ()


@pytest.mark.skipif(not HAS_PLANTS, reason="this checkout has no tradecore.testing.planted")
def test_planted_story_7_rolls_back_the_position_its_initial_stop_protects() -> None:
    result = asyncio.run(run_world(_crash_alone(9, Venue.BYBIT), plant=7))
    assert result.counts[INITIAL_STOP_CRASH] == 1
    closed = [v for v in result.violations if v.invariant == "closed_protected"]
    assert closed, result.violations
