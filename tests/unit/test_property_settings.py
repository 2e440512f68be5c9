"""Property tests fail on wrong answers only, never because the machine is busy.

On the shared 2-core machine another process can take the CPU for a second in the middle of an
example or of drawing one. Hypothesis's defaults (a 200 ms deadline per example, the `too_slow`
health check on data generation) turn that into a failure of a test whose subject is not time.
The machine's stall is played here by moving `time.perf_counter` (what Hypothesis measures
with) a second forward, so the stall happens every time, without waiting for it."""

import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture
def stall(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it and a second has gone by on Hypothesis's watch (the CPU was elsewhere)."""
    real = time.perf_counter
    stalled = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: real() + stalled[0])

    def one_second_elsewhere() -> None:
        stalled[0] += 1.0

    return one_second_elsewhere


def test_an_example_slowed_by_a_busy_machine_is_not_a_failure(stall: Callable[[], None]) -> None:
    @settings(max_examples=10)  # as the suite's property tests that say only how many
    @given(st.integers())
    def doubling_is_even(n: int) -> None:
        stall()
        assert (2 * n) % 2 == 0

    doubling_is_even()


def test_drawing_examples_slowed_by_a_busy_machine_is_not_a_failure(
    stall: Callable[[], None],
) -> None:
    def slowly(n: int) -> int:
        stall()
        return n

    @settings(max_examples=10)
    @given(st.integers().map(slowly))
    def doubling_is_even(n: int) -> None:
        assert (2 * n) % 2 == 0

    doubling_is_even()
