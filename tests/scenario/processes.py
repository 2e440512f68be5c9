"""Runner processes for the lifecycle tests: spawn, probe, signal, read their journal."""

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tradecore.adapters.sqlite.lock import FileInstanceLock

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def spawning(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start `python -m <module> args…` in tmp_path (its stderr in a file; `log_file=` turns
    the runner's log file on); every process is killed at the end."""
    children: list[asyncio.subprocess.Process] = []

    async def start(
        *args: str, module: str = "runner", log_file: Path | None = None
    ) -> asyncio.subprocess.Process:
        path = os.pathsep.join((str(REPO / "src"), str(REPO)))  # this checkout, not another
        logs = "" if log_file is None else str(log_file)  # the runner's own log, every level
        env = {**os.environ, "PYTHONPATH": path, "TRADECORE_LOGGING__FILE": logs}
        log = (tmp_path / f"process-{len(children)}.log").open("wb")  # a pipe could fill up
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        children.append(child)
        return child

    yield start
    for child in children:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def handling(
    child: asyncio.subprocess.Process, sig: signal.Signals, *, within: float = 120.0
) -> None:
    """Wait until the child has its own handler for `sig` — its start-up got that far, however
    long a loaded machine took to start the interpreter and import the runner (a signal that
    comes before kills it the default way) — failing if it exits first (Linux: the caught
    signals' mask in /proc/PID/status)."""
    deadline = asyncio.get_running_loop().time() + within
    while not _catches(child.pid, sig):
        if child.returncode is not None:
            pytest.fail(f"the process exited {child.returncode} before handling {sig.name}")
        assert asyncio.get_running_loop().time() < deadline, f"never handled {sig.name}"
        await asyncio.sleep(0.05)


def _catches(pid: int, sig: signal.Signals) -> bool:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


async def probe(port: int, child: asyncio.subprocess.Process, *, within: float = 60.0) -> int:
    """Poll /health until it answers (any status), asking the server to close the connection
    so that its side is left in TIME_WAIT, as a load balancer's probe does."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as client:
        while True:
            if child.returncode is not None:
                pytest.fail(f"the process exited {child.returncode}")
            try:
                url = f"http://127.0.0.1:{port}/health"
                async with client.get(url, headers={"Connection": "close"}) as answer:
                    return answer.status
            except aiohttp.ClientConnectionError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "never answered"
            await asyncio.sleep(0.1)


async def exit_code(child: asyncio.subprocess.Process, *, within: float = 60.0) -> int:
    return await asyncio.wait_for(child.wait(), within)


def events(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT event_type FROM events ORDER BY seq")]


def in_flight(database: Path) -> int:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT count(*) FROM operations WHERE finished_at IS NULL").fetchone()
    return int(row[0])


async def lock_is_free(database: Path, account: str = "binance:default") -> bool:
    lock = FileInstanceLock(database.parent, stem=database.name)
    try:
        await lock.acquire(account)
    except Exception:
        return False
    await lock.release()
    return True


def paper(database: Path, port: int) -> tuple[str, ...]:
    return (
        "paper",
        "--realtime",
        "--hours",
        "1",
        "--symbols",
        "3",
        "--no-progress",
        "--database-url",
        f"sqlite:///{database}",
        "--health-port",
        str(port),
    )


async def wait_for_event(database: Path, kind: str, child: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        if child.returncode is not None:
            pytest.fail(f"the process exited {child.returncode}")
        try:
            if kind in events(database):
                return
        except sqlite3.Error:
            pass  # not created yet, or busy
        assert asyncio.get_running_loop().time() < deadline, f"no {kind} event"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def locked(database: Path) -> Iterator[Callable[[], None]]:
    """Hold `database` exclusively from this process (as a backup tool would) until the
    returned function is called: the runner cannot open it meanwhile."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        if holder.in_transaction:
            holder.execute("ROLLBACK")

    try:
        yield release
    finally:
        release()
        holder.close()
