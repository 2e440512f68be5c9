"""Reducing a failing seed's incidents, and the runner's `simulate` command."""

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.__main__ import main
from tradecore.testing.simulation.batch import minimize


async def test_the_reduction_keeps_exactly_the_incidents_the_failure_needs() -> None:
    async def fails(kept: Sequence[int]) -> bool:
        return {3, 11} <= set(kept)

    assert await minimize(list(range(1, 21)), fails) == [3, 11]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(
    st.lists(st.integers(0, 30), unique=True, min_size=1, max_size=25),
    st.sets(st.integers(0, 30), min_size=1, max_size=4),
)
def test_the_reduced_schedule_is_one_minimal(items: list[int], needed: set[int]) -> None:
    import asyncio

    needed &= set(items)

    async def fails(kept: Sequence[int]) -> bool:  # a failure needing `needed`, or any 2
        return (bool(needed) and needed <= set(kept)) or (not needed and len(kept) >= 2)

    if not asyncio.run(fails(items)):
        return
    reduced = asyncio.run(minimize(items, fails))
    assert asyncio.run(fails(reduced))
    for item in reduced:  # removing any single one makes it pass
        assert not asyncio.run(fails([i for i in reduced if i != item]))


def test_simulate_replays_one_seed_and_prints_its_counts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", "--seed", "2", "--venue", "binance", "--hours", "1", "--no-reduce"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert out.startswith("seed 2 binance 1 h")
    assert "totals over 1 seeds" in out and "person:cancel_stop" in out
    assert ("replay: python -m runner simulate --seed 2 --hours 1 --venue binance" in out) == (
        code == 1
    )


def test_simulate_refuses_a_bad_venue() -> None:
    assert main(["simulate", "--venue", "kraken"]) == 2
