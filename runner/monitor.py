"""`python -m runner monitor`: a snapshot from the database every interval, printed as a table
and appended to a JSONL file, and a final JSON report on exit (wiring and printing only; the
figures are computed in `tradecore.adapters.reporting.monitor`)."""

import asyncio
import contextlib
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from tradecore.adapters.clock import SystemClock
from tradecore.adapters.reporting.monitor import (
    MonitorSettings,
    Snapshot,
    failed_snapshot,
    final_report,
    snapshot_json,
    snapshot_text,
    take_snapshot,
)
from tradecore.adapters.reporting.source import Reader, open_reader
from tradecore.ports.clock import Clock


async def run_monitor(
    database_url: str,
    *,
    interval: float = 60,
    jsonl_path: str | None = None,
    iterations: int | None = None,
    out: TextIO = sys.stdout,
    spool_path: str | None = None,
    clock: Clock | None = None,
) -> int:
    """Watch until `iterations` snapshots are taken (forever if None) or until interrupted.

    0 when it ran, 2 for bad arguments or a database that cannot be opened at all. A
    database that goes away later is reported as a CRITICAL anomaly and the monitor carries on:
    it drops the broken connection and opens a new one for the next snapshot, so the first
    snapshot after the database is back reads it again.
    """
    if interval <= 0 or (iterations is not None and iterations < 1):
        print("monitor: --interval must be > 0 and --iterations >= 1", file=sys.stderr)
        return 2
    clock = clock or SystemClock()
    if jsonl_path is not None:
        Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
    try:
        reader = await open_reader(database_url)
    except Exception as exc:  # one line, no traceback
        print(
            f"monitor: cannot open the database: {type(exc).__name__}: {exc} "
            "(check the URL and that the server is running)",
            file=sys.stderr,
        )
        return 2  # a wrong URL or a server that is down: the operator's to fix
    snapshots: list[Snapshot] = []
    connection = _Connection(database_url, reader)
    try:
        await _watch(
            connection, interval, jsonl_path, iterations, out, spool_path, clock, snapshots
        )
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass  # Ctrl-C: still print the final report below
    finally:
        await connection.close()
        out.write(json.dumps({"final_report": final_report(snapshots)}, indent=2) + "\n")
        out.flush()
    return 0


class _Connection:
    """The reader, reopened after the database failed a snapshot."""

    def __init__(self, url: str, reader: Reader) -> None:
        self._url = url
        self._reader: Reader | None = reader

    async def reader(self) -> Reader:
        if self._reader is None:
            self._reader = await open_reader(self._url)
        return self._reader

    async def drop(self) -> None:
        """Forget a connection the database broke; the next snapshot opens a new one."""
        await self.close()

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.close()


async def _watch(
    connection: _Connection,
    interval: float,
    jsonl_path: str | None,
    iterations: int | None,
    out: TextIO,
    spool_path: str | None,
    clock: Clock,
    snapshots: list[Snapshot],
) -> None:
    settings = MonitorSettings(interval_seconds=interval)
    since = clock.now() - timedelta(seconds=interval)
    spool = _size(spool_path)
    while iterations is None or len(snapshots) < iterations:
        if snapshots:
            await clock.sleep(interval)
        now = clock.now()
        size = _size(spool_path)
        try:
            snapshot = await take_snapshot(
                await connection.reader(),
                now=now,
                since=since,
                settings=settings,
                spool_bytes=size,
                previous_spool_bytes=spool,
            )
        except Exception as exc:  # the database went away: say so and keep watching
            snapshot = failed_snapshot(now, since, f"{type(exc).__name__}: {exc}")
            await connection.drop()
        snapshots.append(snapshot)
        since, spool = now, size
        out.write(snapshot_text(snapshot))
        out.flush()
        if jsonl_path is not None:
            with open(jsonl_path, "a", encoding="utf-8") as file:
                file.write(json.dumps(snapshot_json(snapshot)) + "\n")


def _size(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
