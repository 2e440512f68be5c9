"""Stopping a real runner process at the edges (issue 10, story 12): SIGTERM during start-up
and Ctrl-C twice mid-wave each end with exit 0, `bot_stopped` journaled, nothing in flight
and the instance lock released."""

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from .processes import (
    events,
    exit_code,
    free_port,
    handling,
    in_flight,
    lock_is_free,
    locked,
    paper,
    spawning,
    wait_for_event,
)

spawn = pytest.fixture(name="spawn")(spawning)


async def test_sigterm_during_start_up_stops_cleanly_with_exit_0(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database = tmp_path / "paper.db"
    with locked(database):  # start-up waits for the database
        child = await spawn(*paper(database, free_port()))  # type: ignore[misc]
        await handling(child, signal.SIGTERM)  # the runner's first instructions have run
        child.send_signal(signal.SIGTERM)
        assert await exit_code(child) == 0  # while the database stays locked
    assert await lock_is_free(database)


async def test_ctrl_c_twice_mid_wave_finishes_the_opens_and_journals_bot_stopped(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database, port = tmp_path / "trade.db", free_port()
    child = await spawn(  # type: ignore[misc]
        str(database), str(port), "3", "0.3", module="tests.scenario.trading_process"
    )
    await wait_for_event(database, "position_open_started", child)
    child.send_signal(signal.SIGINT)
    await asyncio.sleep(0.3)
    child.send_signal(signal.SIGINT)  # the impatient second Ctrl-C
    assert await exit_code(child) == 0
    kinds = events(database)
    assert kinds[-1] == "bot_stopped"
    assert in_flight(database) == 0  # every open driven to its end: filled and protected
    assert kinds.count("stop_loss_placed") >= kinds.count("entry_order_filled") > 0
    assert await lock_is_free(database)
