"""Virtual time: tasks on the Clock port run deterministically, in order, without waiting."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.adapters.clock import (
    RandomIds,
    SeededIds,
    SequentialIds,
    SystemClock,
    VirtualClock,
    settle_ready,
)
from tradecore.ports.clock import Clock, IdGenerator

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_clocks_and_id_generators_satisfy_their_ports() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(SystemClock(), Clock)
    assert isinstance(RandomIds(), IdGenerator)
    assert isinstance(SequentialIds(), IdGenerator)
    assert isinstance(SeededIds(1), IdGenerator)


async def test_virtual_time_stands_still_until_advanced() -> None:
    clock = VirtualClock(START)
    sleeper = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0.01)
    assert clock.now() == START and not sleeper.done()
    await clock.advance(4.999)
    assert not sleeper.done()
    await clock.advance(0.001)
    assert sleeper.done() and clock.now() == START + timedelta(seconds=5)


async def test_a_long_virtual_sleep_costs_no_wall_time() -> None:
    clock = VirtualClock(START)
    sleeper = asyncio.create_task(clock.sleep(86_400 * 30))
    # a month of virtual time within a minute of the wall's, however busy the machine
    await asyncio.wait_for(clock.advance(86_400 * 30), 60)
    assert sleeper.done() and clock.now() == START + timedelta(days=30)


async def test_sleepers_wake_in_deadline_order_and_ties_in_the_order_they_slept() -> None:
    clock = VirtualClock(START)
    woke: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(nap(n, s)) for n, s in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2)]]
    await clock.advance(10)
    assert all(task.done() for task in tasks)
    assert woke == ["a", "b1", "b2", "c"]


async def test_each_sleeper_sees_the_time_of_its_own_deadline() -> None:
    clock = VirtualClock(START)
    seen: list[float] = []

    async def ticker() -> None:
        for _ in range(3):
            await clock.sleep(60)
            seen.append((clock.now() - START).total_seconds())

    task = asyncio.create_task(ticker())
    await clock.advance(600)
    assert task.done()
    assert seen == [60, 120, 180]


async def test_timers_and_sleepers_share_one_order() -> None:
    clock = VirtualClock(START)
    events: list[str] = []

    async def sleeper() -> None:
        await clock.sleep(2)
        events.append("sleeper@2")

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.call_at(START + timedelta(seconds=1), lambda: events.append("timer@1"))
    clock.call_at(START + timedelta(seconds=3), lambda: events.append("timer@3"))
    cancelled = clock.call_at(START + timedelta(seconds=2), lambda: events.append("cancelled"))
    cancelled.cancel()
    await clock.advance(5)
    assert task.done()
    assert events == ["timer@1", "sleeper@2", "timer@3"]


async def test_a_cancelled_sleeper_does_not_stop_the_clock() -> None:
    clock = VirtualClock(START)
    doomed = asyncio.create_task(clock.sleep(1))
    survivor = asyncio.create_task(clock.sleep(2))
    await asyncio.sleep(0)
    doomed.cancel()
    await clock.advance(3)
    assert doomed.cancelled() and survivor.done()


async def test_clock_refuses_to_move_backwards() -> None:
    clock = VirtualClock(START)
    with pytest.raises(ValueError):
        await clock.advance(-1)
    with pytest.raises(ValueError):
        await clock.run_until(START - timedelta(seconds=1))


async def test_run_all_drives_chains_of_sleeps_to_the_end() -> None:
    clock = VirtualClock(START)

    async def chain() -> None:
        for _ in range(100):
            await clock.sleep(1)

    task = asyncio.create_task(chain())
    await asyncio.sleep(0)
    await clock.run_all()
    assert task.done() and clock.now() == START + timedelta(seconds=100)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40))
async def test_many_sleeping_tasks_always_wake_sorted_by_deadline_then_arrival(
    delays: list[int],
) -> None:
    clock = VirtualClock(START)
    woke: list[int] = []

    async def nap(index: int) -> None:
        await clock.sleep(delays[index] + 1)
        woke.append(index)

    tasks = [asyncio.create_task(nap(i)) for i in range(len(delays))]
    await clock.advance(100)
    assert woke == sorted(range(len(delays)), key=lambda i: (delays[i], i))
    assert all(task.done() for task in tasks)


async def test_zero_sleep_yields_without_moving_time() -> None:
    clock = VirtualClock(START)
    await clock.sleep(0)
    assert clock.now() == START


def test_random_ids_are_short_alphanumeric_and_distinct() -> None:
    ids = RandomIds()
    made = {ids.new_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(i) == 12 and i.isalnum() for i in made)
    assert ids.new_uuid() != ids.new_uuid()


def test_seeded_ids_look_random_and_repeat_only_for_the_same_seed() -> None:
    def draw(seed: int) -> list[str]:
        ids = SeededIds(seed)
        return [ids.new_id() for _ in range(500)] + [str(ids.new_uuid()) for _ in range(500)]

    first = draw(7)
    assert draw(7) == first
    assert set(draw(8)).isdisjoint(first)
    assert len(set(first)) == 1000
    assert all(len(i) == 12 and i.isalnum() for i in first[:500])
    assert all(uuid.UUID(u).version == 4 for u in first[500:])


def test_sequential_ids_are_predictable() -> None:
    ids = SequentialIds("op")
    assert [ids.new_id(), ids.new_id()] == ["op1", "op2"]
    first, second = ids.new_uuid(), ids.new_uuid()
    assert second.int == first.int + 1
    assert first == SequentialIds("op").new_uuid()  # the same every run
    # another prefix (another process of a test) never makes the same event id: the
    # journal stores an id once, so a collision would drop an event
    other = SequentialIds("oq")
    assert {first, second}.isdisjoint({other.new_uuid(), other.new_uuid()})


async def test_system_clock_is_utc_aware() -> None:
    assert SystemClock().now().tzinfo is UTC


async def test_a_second_driver_cannot_advance_the_clock_while_it_is_moving() -> None:
    clock = VirtualClock(START)
    errors: list[Exception] = []

    async def rogue_driver() -> None:
        await clock.sleep(1)
        try:
            await clock.advance(1)
        except RuntimeError as error:
            errors.append(error)

    task = asyncio.create_task(rogue_driver())
    await clock.advance(5)
    assert task.done() and len(errors) == 1
    assert clock.now() == START + timedelta(seconds=5)


async def test_system_clock_timers_fire_on_the_wall_clock_unless_cancelled() -> None:
    clock = SystemClock()
    fired: list[str] = []
    clock.call_at(clock.now() + timedelta(milliseconds=5), lambda: fired.append("kept"))
    dropped = clock.call_at(clock.now() + timedelta(milliseconds=5), lambda: fired.append("x"))
    dropped.cancel()
    await clock.sleep(0.05)
    assert fired == ["kept"]


async def test_settle_ready_wakes_the_same_tasks_in_the_same_order_as_settle() -> None:
    """`run_until(..., settling=settle_ready)` skips only the empty passes: every sleeper and
    timer wakes, and what they do at an instant runs before time moves on, in the same order."""

    async def trace(settling: Any) -> list[tuple[str, float]]:
        clock = VirtualClock()
        seen: list[tuple[str, float]] = []

        async def worker(name: str, period: float) -> None:
            for _ in range(3):
                await clock.sleep(period)
                seen.append((name, clock.now().timestamp()))
                await asyncio.sleep(0)  # more work at the same instant
                seen.append((name + "'", clock.now().timestamp()))

        tasks = [asyncio.ensure_future(worker(n, p)) for n, p in (("a", 1.0), ("b", 1.5))]
        clock.call_at(clock.now() + timedelta(seconds=2), lambda: seen.append(("t", 2.0)))
        await clock.run_until(clock.now() + timedelta(seconds=10), settling=settling)
        await asyncio.gather(*tasks)
        start = VirtualClock().now().timestamp()
        return [(n, round(t - start, 3)) for n, t in seen]

    assert await trace(settle_ready) == await trace(None)
    assert len(await trace(settle_ready)) == 13
