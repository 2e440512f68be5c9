"""The planted-bug switch works: under `planted(n)` story n's own test fails again."""

import pytest

from tradecore.testing import FakeVenue
from tradecore.testing.planted import PLANTABLE, planted

from . import test_already_done as story_7_8
from . import test_stop_ownership as story_1_2_3
from .conftest import ROUND_TRIP, Database
from .harness import build_app


async def test_story_1_fails_again_under_its_plant(database: Database) -> None:
    with planted(1), pytest.raises(AssertionError):
        await story_1_2_3.test_the_guard_acts_on_the_venue_as_it_is_when_it_acts_not_as_it_read_it(
            database
        )


async def test_story_2_fails_again_under_its_plant(database: Database) -> None:
    app = build_app(FakeVenue.binance(latency=ROUND_TRIP), database.store)
    with planted(2), pytest.raises(AssertionError):
        await story_1_2_3.test_a_stop_removed_by_hand_twice_is_put_back_twice(app)


async def test_story_7_fails_again_under_its_plant(database: Database) -> None:
    app = build_app(FakeVenue.binance(latency=ROUND_TRIP), database.store)
    with planted(7), pytest.raises(AssertionError):
        await story_7_8.test_a_stop_the_venue_already_has_is_taken_as_placed_not_rolled_back(app)


async def test_story_8_fails_again_under_its_plant(database: Database) -> None:
    story_8 = (
        story_7_8.test_a_crash_between_creating_the_new_stop_and_recording_it_adopts_the_new_stop
    )
    with planted(8), pytest.raises(AssertionError):
        await story_8(database)


async def test_every_plant_is_undone_on_exit(database: Database) -> None:
    for story in PLANTABLE:
        with planted(story):
            pass
    await story_1_2_3.test_the_guard_acts_on_the_venue_as_it_is_when_it_acts_not_as_it_read_it(
        database
    )


def test_only_the_plantable_stories_can_be_planted() -> None:
    with pytest.raises(ValueError), planted(3):
        pass
