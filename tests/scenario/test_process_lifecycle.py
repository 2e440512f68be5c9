"""The runner as a real process, killed and restarted as an operator's worst day would
(issue 10, story 11): it comes back after a crash on the same health port, and waits for a
database it cannot open yet (locked by another process) instead of exiting."""

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from .processes import (
    events,
    exit_code,
    free_port,
    locked,
    paper,
    probe,
    spawning,
    wait_for_event,
)

spawn = pytest.fixture(name="spawn")(spawning)


async def test_a_bot_killed_right_after_a_health_probe_comes_back_on_the_same_port(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database, port = tmp_path / "paper.db", free_port()
    first = await spawn(*paper(database, port))  # type: ignore[misc]
    await probe(port, first)  # the server closed the probe's connection: TIME_WAIT on its side
    first.kill()  # a crash
    await first.wait()

    log = tmp_path / "again.log"
    again = await spawn(*paper(database, port), log_file=log)  # type: ignore[misc]
    await probe(port, again)
    again.send_signal(signal.SIGTERM)
    assert await exit_code(again) == 0
    # it listened at once, not after TIME_WAIT's minute (however long its start-up took)
    assert "the health endpoint cannot listen" not in log.read_text()
    assert "paper session" in log.read_text()  # the log is the runner's own


async def test_a_database_unreachable_at_start_up_is_waited_for_and_the_bot_proceeds(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database, port = tmp_path / "paper.db", free_port()
    with locked(database) as release:
        child = await spawn(*paper(database, port))  # type: ignore[misc]
        with pytest.raises(TimeoutError):  # it waits (one line per attempt), it does not exit
            await asyncio.wait_for(asyncio.shield(child.wait()), 8)
        release()
        await probe(port, child)  # …and proceeds once the database can be opened
    child.send_signal(signal.SIGTERM)
    assert await exit_code(child) == 0
    assert events(database)[-1] == "bot_stopped"


async def test_the_trade_command_waits_for_a_venue_unreachable_at_start_up(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database, port = tmp_path / "trade.db", free_port()
    child = await spawn(  # type: ignore[misc]
        str(database), str(port), "600", "0", "2", module="tests.scenario.trading_process"
    )
    await wait_for_event(database, "bot_started", child)  # after two failed attempts
    child.send_signal(signal.SIGTERM)
    assert await exit_code(child) == 0
    kinds = events(database)
    assert kinds.count("health_check_failed") == 2 and kinds[-1] == "bot_stopped"


async def test_a_second_instance_on_the_same_account_exits_3_and_the_first_trades_on(
    spawn: Callable[..., object], tmp_path: Path
) -> None:
    database, port = tmp_path / "paper.db", free_port()
    first = await spawn(*paper(database, port))  # type: ignore[misc]
    await probe(port, first)
    second = await spawn(*paper(database, free_port()))  # type: ignore[misc]
    assert await exit_code(second) == 3  # the unit does not restart it
    assert first.returncode is None
    first.send_signal(signal.SIGTERM)
    assert await exit_code(first) == 0
