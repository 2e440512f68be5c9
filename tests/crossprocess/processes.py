"""Real processes for the cross-process tests: the loopback exchange, the runner, and a
signal service in the test's own event loop that sends a wave every few seconds."""

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tradecore.domain.waves import WaveSchedule, floor_wave

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port probed free, for a child process that must be told its port on its command
    line or in its config (a listener of the test's own binds port 0 instead)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADECORE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env.update(extra)
    return env


class Loopback:
    """`python -m tradecore.testing.loopback` as a child process."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        venue: str,
        *,
        seed: int,
        symbols: Sequence[str],
        interval: float = 0.25,
        alter: Sequence[str] = (),
    ) -> AsyncIterator["Loopback"]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tradecore.testing.loopback",
            "--venue",
            venue,
            "--seed",
            str(seed),
            "--interval",
            str(interval),
            *(arg for name in alter for arg in ("--alter", name)),
            "--symbols",
            *symbols,
            stdout=asyncio.subprocess.PIPE,
            env=child_env(),
        )
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 180)  # a loaded start-up
            url = line.decode().strip().rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:"), line
            yield cls(process, url)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 10)
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def inject(self, **fault: Any) -> None:
        """Script a fault on the exchange (`kind`, `op`, `symbol`, `times`, as `Fault`)."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/__loopback/faults", json=fault) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def clear_faults(self) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{self.url}/__loopback/faults") as answer,
        ):
            assert answer.status == 200

    async def state(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/__loopback/state") as answer,
        ):
            assert answer.status == 200
            body: dict[str, Any] = await answer.json()
            return body


class SignalService:
    """A websocket signal service: at each wave's beginning it sends that wave's signals to
    every client; a client that connects gets the last two waves again (as a service that
    replays recent signals would), so a restarted bot sees waves already claimed."""

    def __init__(
        self, schedule: WaveSchedule, symbols: Sequence[str], venue: str, *, seed: int
    ) -> None:
        self.schedule = schedule
        self.symbols = list(symbols)
        self.venue = venue
        self.rng = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.port = 0  # the one the system gives at start (a probed free port can be taken)
        self._clients: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._client)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        self._task = asyncio.create_task(self._waves())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for client in tuple(self._clients):
            await client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _client(self, request: web.Request) -> web.WebSocketResponse:
        socket_ = web.WebSocketResponse(heartbeat=None)
        await socket_.prepare(request)
        self._clients.add(socket_)
        try:
            recent = floor_wave(datetime.now(UTC), self.schedule) - self.schedule.length
            for message in [m for m in self.sent if m["timestamp"] >= recent.isoformat()]:
                await socket_.send_str(json.dumps(message))
            async for _ in socket_:
                pass
        finally:
            self._clients.discard(socket_)
        return socket_

    def _wave(self, wave: datetime) -> list[dict[str, Any]]:
        chosen = self.rng.sample(self.symbols, k=self.rng.randint(1, min(2, len(self.symbols))))
        return [
            {
                "id": f"x-{wave:%H%M%S}-{symbol}",
                "symbol": symbol,
                "exchange": self.venue,
                "action": self.rng.choice(["BUY", "SELL"]),
                "score_week": self.rng.randint(10, 90),
                "score_month": self.rng.randint(10, 90),
                "timestamp": wave.isoformat(),
                "created_at": datetime.now(UTC).isoformat(),
            }
            for symbol in chosen
        ]

    async def _waves(self) -> None:
        while True:
            now = datetime.now(UTC)
            wave = floor_wave(now, self.schedule) + self.schedule.length
            await asyncio.sleep((wave - now).total_seconds() + 0.05)
            messages = self._wave(wave)
            self.sent.extend(messages)
            for client in tuple(self._clients):
                for message in messages:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await client.send_str(json.dumps(message))


class Runner:
    """`python -m runner trade` against the loopback, SIGKILLed or stopped by the test."""

    def __init__(self, workdir: Path, config: Path, venue: str) -> None:
        self.workdir = workdir
        self.config = config
        self.venue = venue
        self.process: asyncio.subprocess.Process | None = None
        self.spawned_at: datetime | None = None
        self.recovered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.stop_sent_at: datetime | None = None  # SIGTERM: no sync pass starts after it
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._recovered = asyncio.Event()

    async def spawn(self) -> None:
        key = self.venue.upper()
        self.spawned_at = datetime.now(UTC)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runner",
            "trade",
            "--config",
            str(self.config),
            cwd=self.workdir,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(
                **{f"TRADECORE_{key}_API_KEY": "dummy-key", f"TRADECORE_{key}_API_SECRET": "x"}
            ),
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "trading on" in line and "recovery:" in line:
                self.recovered_at = datetime.now(UTC)
                self._recovered.set()

    async def recovered(self, within: float) -> bool:
        """True once the runner logged the end of its start-up recovery."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._recovered.wait(), within)
        return self._recovered.is_set()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def unawaited(self) -> list[str]:
        """The lines where the runner's Python said a coroutine was never awaited (a step it
        skipped without a word: the suite's pytest config makes that an error in-process)."""
        return [line for line in self.lines if "was never awaited" in line]

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()  # SIGKILL: no shutdown, no flush, nothing
        await self.process.wait()
        self.ended_at = datetime.now(UTC)
        if self._reader is not None:
            await self._reader

    async def stop(self) -> int:
        assert self.process is not None
        self.stop_sent_at = datetime.now(UTC)
        self.process.send_signal(signal.SIGTERM)
        try:  # a graceful stop on a loaded machine (waves in flight, alerts drained): minutes
            code = await asyncio.wait_for(self.process.wait(), 120)
        except TimeoutError:
            await self.kill()
            code = -9
        self.ended_at = datetime.now(UTC)
        if self._reader is not None:
            await self._reader
        return code


def runner_config(
    workdir: Path, *, venue: str, exchange_url: str, signals_url: str, extra: str = ""
) -> Path:
    path = workdir / "tradecore.toml"
    path.write_text(
        f"""
mode = "demo"
venue = "{venue}"
account = "xproc"

[database]
url = "sqlite:///{workdir / "bot.db"}"
spool_path = "{workdir / "events.spool"}"

[signals]
url = "{signals_url}"

[health]
port = 0

[logging]
file = "{workdir / "runner.log"}"

[testing]
exchange_url = "{exchange_url}"
{extra}
""",
        encoding="utf-8",
    )
    return path
