"""The simulator in CI: >= 100 seeds per venue (1-24 virtual hours each, faults, people,
crashes and outages all on) on the real SQLite store; every fault kind, person action and
crash point happens >= 20 times across them; no seed breaks an invariant; a seed's journal
is the same byte for byte on every run.

`TRADECORE_SIM_SEEDS` changes the number of seeds per venue (`make soak` runs 10,000).
"""

import asyncio
import os
from collections import Counter

import pytest

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world, run_world
from tradecore.testing.simulation.batch import Summary, counts_table, expected_kinds, run_many
from tradecore.testing.simulation.world import INITIAL_STOP_CRASH, REPLACE_CRASH, Rates

SEEDS = int(os.environ.get("TRADECORE_SIM_SEEDS", "100"))
WORKERS = max(1, min(2, os.cpu_count() or 1))
AT_LEAST = 20

# Seeds that still break an invariant on this checkout: each is a hole the simulator found and
# that is not closed yet (listed in issue 10's note, replayable with the printed command). The
# test fails on any other seed that breaks, and on a listed seed that no longer breaks, so the
# list can only shrink.
# Diagnosed and closed: binance 16, bybit 43 and 69 (health_blind: a position the guard had
# adopted and whose stop was refused was counted fixed, tests/scenario/test_guard_adopts.py);
# binance 85 (trailing_stuck: the checker asked the bot to trail a best mark that came while
# it was down, tests/simulation/test_invariants.py).
KNOWN_BROKEN: dict[Venue, dict[int, str]] = {
    Venue.BINANCE: {},
    Venue.BYBIT: {},
}


@pytest.fixture(scope="module")
def ci_seeds() -> dict[Venue, list[Summary]]:
    return {
        venue: run_many(range(SEEDS), venue, workers=WORKERS)  # type: ignore[arg-type]
        for venue in (Venue.BINANCE, Venue.BYBIT)
    }


def totals(runs: dict[Venue, list[Summary]]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for summaries in runs.values():
        for summary in summaries:
            counted.update(summary.counts)
    return counted


@pytest.mark.timeout(3600)
def test_every_fault_person_action_and_crash_point_happens_often_across_the_ci_seeds(
    ci_seeds: dict[Venue, list[Summary]],
) -> None:
    counted = totals(ci_seeds)
    print(counts_table(counted, title=f"{SEEDS} seeds per venue"))
    hours = sum(s.hours for runs in ci_seeds.values() for s in runs)
    cpu = sum(s.cpu_seconds for runs in ci_seeds.values() for s in runs)
    print(f"{hours:.0f} virtual hours, {hours / cpu * 60:.0f} per CPU minute")
    rare = {kind: counted.get(kind, 0) for kind in expected_kinds() if counted[kind] < AT_LEAST}
    assert not rare, f"happened fewer than {AT_LEAST} times: {rare}"


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("venue", [Venue.BINANCE, Venue.BYBIT], ids=["binance", "bybit"])
def test_no_ci_seed_breaks_an_invariant(ci_seeds: dict[Venue, list[Summary]], venue: Venue) -> None:
    known = KNOWN_BROKEN[venue] if SEEDS == 100 else {}
    failed = [s for s in ci_seeds[venue] if s.failed and s.seed not in known]
    lines = [
        f"seed {s.seed} ({s.hours:g} h): {s.violations[0]}  "
        f"replay: python -m runner simulate --seed {s.seed} --hours {s.hours:g} "
        f"--venue {venue.value}"
        for s in failed
    ]
    assert not failed, f"{len(failed)} of {len(ci_seeds[venue])} seeds broke:\n" + "\n".join(lines)
    healed = sorted(s.seed for s in ci_seeds[venue] if s.seed in known and not s.failed)
    assert not healed, f"seeds {healed} no longer break: take them off KNOWN_BROKEN"


def test_the_same_seed_writes_the_same_journal_byte_for_byte() -> None:
    world = plan_world(3, Venue.BINANCE, hours=2)

    async def twice() -> tuple[str, str, int]:
        first = await run_world(world)
        second = await run_world(world)
        return first.digest, second.digest, first.events

    first, second, events = asyncio.run(twice())
    assert events > 100  # a journal with something in it
    assert first == second


def test_guard_races_are_drawn_apart_so_the_rest_of_each_world_stays_as_it_was() -> None:
    # Races came after the CI seeds were diagnosed: they come from a generator of their own
    # and are numbered after the other incidents, so every other incident (and a replay's
    # --incidents numbers) is what it was before races existed.
    raced = 0
    for venue in (Venue.BINANCE, Venue.BYBIT):
        for seed in range(20):
            world = plan_world(seed, venue)
            # (replace and initial stop crashes, drawn after the races, are left out: their
            # own tests)
            calm = plan_world(
                seed, venue, rates=Rates(guard_races=0, replace_crashes=0, initial_stop_crashes=0)
            )
            races = [i for i in world.incidents if i.kind.startswith("race:")]
            crashes = (REPLACE_CRASH, INITIAL_STOP_CRASH)
            rest = [i for i in world.incidents if i not in races and i.kind not in crashes]
            assert rest == list(calm.incidents)
            assert all(i.number > len(calm.incidents) for i in races)
            raced += bool(races)
    assert raced >= 5  # and some worlds have one
