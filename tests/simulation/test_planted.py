"""The simulator finds the bugs it was built to find: with one fixed bug re-introduced
(`tradecore.testing.planted`, stories 1, 2, 7 and 8 of issue 10), some CI seed breaks an
invariant. Skipped on a checkout without the planted-bug switch."""

import importlib.util
import os

import pytest

from tradecore.domain.model import Venue
from tradecore.testing.simulation.batch import Summary, run_many

SEEDS = int(os.environ.get("TRADECORE_SIM_PLANT_SEEDS", "100"))
WORKERS = max(1, min(2, os.cpu_count() or 1))
HAS_PLANTS = importlib.util.find_spec("tradecore.testing.planted") is not None


_BASELINE: dict[tuple[Venue, int], Summary] = {}


def baseline(seeds: range, venue: Venue) -> dict[int, Summary]:
    """The same seeds without any plant (cached across the stories)."""
    missing = [seed for seed in seeds if (venue, seed) not in _BASELINE]
    for summary in run_many(missing, venue, workers=WORKERS) if missing else []:
        _BASELINE[(venue, summary.seed)] = summary
    return {seed: _BASELINE[(venue, seed)] for seed in seeds}


@pytest.mark.skipif(not HAS_PLANTS, reason="this checkout has no tradecore.testing.planted")
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(
    "story",
    [
        1,
        2,
        pytest.param(
            7,
            marks=pytest.mark.xfail(
                strict=True,
                reason=(
                    "open hole in the simulator (issue 10): since the quiescence and guard "
                    "fixes, no invariant flags a protected position closed at market after an "
                    "'already done' answer taken as a failure; story 7's own tests still catch it"
                ),
            ),
        ),
        8,
    ],
)
def test_the_ci_seeds_catch_each_planted_bug(story: int) -> None:
    """The CI seeds in order, a few at a time, until one breaks an invariant under the plant
    that it does not break without it."""
    for start in range(0, SEEDS, 2 * WORKERS):
        seeds = range(start, min(SEEDS, start + 2 * WORKERS))
        for venue in (Venue.BINANCE, Venue.BYBIT):
            clean = baseline(seeds, venue)
            for planted in run_many(seeds, venue, plant=story, workers=WORKERS):
                new = set(planted.invariants) - set(clean[planted.seed].invariants)
                if new:
                    found = next(v for v in planted.violations if v.split(" ", 1)[0] in new)
                    print(f"story {story}: {venue.value} seed {planted.seed}: {found}")
                    return
    pytest.fail(f"none of the {SEEDS} CI seeds per venue found planted story {story}")
