"""The live monitor's loop: a snapshot of one database, or of every account on a server, every
interval; printed as a table (one per account, then their total) and appended to a JSONL file;
a final JSON report when it stops. The figures are `reporting.monitor`'s.

`watch(url, ...)` watches one database (its output as it always was); `watch_accounts(accounts,
...)` watches several, keyed by account fingerprint, each on its own connection: one account's
database going away is that account's CRITICAL `database_unreachable` while the others carry on.
"""

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import attrs

from tradecore.adapters.clock import SystemClock
from tradecore.adapters.reporting.accounts import Account, Copy, count_once, fingerprint_of
from tradecore.adapters.reporting.analysis import pnl
from tradecore.adapters.reporting.monitor import (
    LEVELS,
    OPEN_ON_VENUE,
    MonitorSettings,
    Snapshot,
    failed_snapshot,
    final_report,
    snapshot_json,
    snapshot_text,
    take_snapshot,
)
from tradecore.adapters.reporting.report import table
from tradecore.adapters.reporting.source import Reader, open_reader
from tradecore.ports.clock import Clock

USAGE = "monitor: --interval must be > 0 and --iterations >= 1"


async def watch(
    database_url: str,
    *,
    interval: float = 60,
    jsonl_path: str | None = None,
    iterations: int | None = None,
    out: TextIO | None = None,
    spool_path: str | None = None,
    clock: Clock | None = None,
) -> int:
    """Watch one database until `iterations` snapshots are taken (forever if None) or until
    interrupted. 0 when it ran, 2 for bad arguments or a database that cannot be opened at
    all. A database that goes away later is reported as a CRITICAL anomaly and the monitor
    carries on: it drops the broken connection and opens a new one for the next snapshot."""
    out = out or sys.stdout
    if not _usable(interval, iterations):
        return 2
    try:
        reader = await open_reader(database_url)
    except Exception as exc:  # one line, no traceback
        print(_unopenable(exc), file=sys.stderr)
        return 2  # a wrong URL or a server that is down: the operator's to fix
    connections = {"": _Connection(database_url, reader)}
    snapshots: dict[str, list[Snapshot]] = {"": []}
    try:
        await _rounds(connections, snapshots, interval, jsonl_path, iterations, out, spool_path,
                      clock or SystemClock(), {})  # fmt: skip
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass  # Ctrl-C: still print the final report below
    finally:
        await _close(connections)
        out.write(json.dumps({"final_report": final_report(snapshots[""])}, indent=2) + "\n")
        out.flush()
    return 0


async def watch_accounts(
    accounts: Sequence[Account],
    *,
    interval: float = 60,
    jsonl_path: str | None = None,
    iterations: int | None = None,
    out: TextIO | None = None,
    clock: Clock | None = None,
) -> int:
    """Watch every account of `accounts` (`accounts.discover_accounts`): each round one table
    per account and a total line (open positions, unprotected now, PnL); the JSONL line and the
    final report keyed by account. 0 when it ran, 2 for bad arguments."""
    out = out or sys.stdout
    if not _usable(interval, iterations):
        return 2
    connections = {a.key: _Connection(a.url, None) for a in accounts}
    snapshots: dict[str, list[Snapshot]] = {a.key: [] for a in accounts}
    databases = {a.key: a.database for a in accounts}
    try:
        await _rounds(connections, snapshots, interval, jsonl_path, iterations, out, None,
                      clock or SystemClock(), databases)  # fmt: skip
    except (asyncio.CancelledError, KeyboardInterrupt):
        pass
    finally:
        await _close(connections)
        report = {
            "accounts": {
                key: {"database": databases[key], **final_report(taken)}
                for key, taken in snapshots.items()
            },
            "total": _final_total(snapshots, databases),
        }
        out.write(json.dumps({"final_report": report}, indent=2) + "\n")
        out.flush()
    return 0


def round_total(
    snapshots: Mapping[str, Snapshot], databases: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The accounts' snapshots of one round added up: open positions, unprotected now, PnL.
    `databases` (key -> database) tells the copies of one account apart (a restored backup):
    the account is counted once and each of its positions once (`accounts.count_once`)."""
    databases = databases or {}
    counted = count_once(
        [
            Copy(
                key=key,
                database=databases.get(key, key),
                fingerprint=fingerprint_of(key, databases.get(key, "")),
                journal_at=s.last_event_at,
                positions=None if s.pnl is None else s.rows,
            )
            for key, s in snapshots.items()
        ]
    )
    kept = {
        key: [p for p in s.rows if p.id in counted.positions[key]]
        for key, s in snapshots.items()
        if s.pnl is not None
    }
    pnl_: Decimal = sum((pnl(rows).total for rows in kept.values()), Decimal(0))
    unknown = [key for key, s in snapshots.items() if s.pnl is None]
    worst = [s.worst for s in snapshots.values() if s.worst is not None]
    journals = [s for key, s in snapshots.items() if key in counted.journal]
    return {
        "accounts": counted.accounts,
        "positions": sum(1 for rows in kept.values() for p in rows if p.state in OPEN_ON_VENUE),
        "unprotected": sum(
            len(counted.positions[key].intersection(s.unprotected)) for key, s in snapshots.items()
        ),
        "pnl": format(pnl_, "f"),
        "pnl_unknown_accounts": unknown,  # unreadable this round: their PnL is not in the sum
        "errors": sum(s.errors for s in journals),
        "criticals": sum(s.criticals for s in journals),
        "worst": min(worst, key=LEVELS.index) if worst else None,
        "warnings": list(counted.warnings),
    }


def total_text(total: Mapping[str, Any]) -> str:
    unknown = total["pnl_unknown_accounts"]
    pnl = total["pnl"] + (f" (without {', '.join(unknown)}: unreadable)" if unknown else "")
    rows = [
        ("TOTAL", total["accounts"], total["positions"], total["unprotected"], pnl,
         total["worst"] or "-"),
    ]  # fmt: skip
    headers = ["", "accounts", "open positions", "unprotected now", "pnl", "worst"]
    warnings = [f"warning: {w}" for w in total.get("warnings", ())]
    return "\n".join([*table(headers, rows), *warnings]) + "\n"


def _usable(interval: float, iterations: int | None) -> bool:
    if interval <= 0 or (iterations is not None and iterations < 1):
        print(USAGE, file=sys.stderr)
        return False
    return True


def _unopenable(exc: BaseException) -> str:
    return (
        f"monitor: cannot open the database: {type(exc).__name__}: {exc} "
        "(check the URL and that the server is running)"
    )


class _Connection:
    """A reader, opened on first use and again after the database failed a snapshot."""

    def __init__(self, url: str, reader: Reader | None) -> None:
        self._url = url
        self._reader = reader

    async def reader(self) -> Reader:
        if self._reader is None:
            self._reader = await open_reader(self._url)
        return self._reader

    async def close(self) -> None:
        """Also: forget a connection the database broke; the next snapshot opens a new one."""
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.close()


async def _close(connections: Mapping[str, _Connection]) -> None:
    for connection in connections.values():
        await connection.close()


async def _rounds(
    connections: Mapping[str, _Connection],
    snapshots: Mapping[str, list[Snapshot]],
    interval: float,
    jsonl_path: str | None,
    iterations: int | None,
    out: TextIO,
    spool_path: str | None,
    clock: Clock,
    databases: Mapping[str, str],
) -> None:
    """Take a snapshot of every connection each interval; `databases` empty: the one database
    of `watch`, printed as it always was."""
    if jsonl_path is not None:
        Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
    settings = MonitorSettings(interval_seconds=interval)
    since = clock.now() - timedelta(seconds=interval)
    spool = _size(spool_path)
    taken = 0
    while iterations is None or taken < iterations:
        if taken:
            await clock.sleep(interval)
        now = clock.now()
        size = _size(spool_path)
        round_: dict[str, Snapshot] = {}
        for key, connection in connections.items():
            try:
                round_[key] = await take_snapshot(
                    await connection.reader(),
                    now=now,
                    since=since,
                    settings=settings,
                    spool_bytes=size,
                    previous_spool_bytes=spool,
                )
            except Exception as exc:  # the database went away: say so and keep watching
                round_[key] = failed_snapshot(now, since, f"{type(exc).__name__}: {exc}")
                await connection.close()
            taken_before = snapshots[key]
            if taken_before:  # only the last round's rows are totalled again: drop the others'
                taken_before[-1] = attrs.evolve(taken_before[-1], rows=())
            taken_before.append(round_[key])
        taken += 1
        since, spool = now, size
        _print_round(round_, databases, jsonl_path, out)


def _print_round(
    round_: Mapping[str, Snapshot],
    databases: Mapping[str, str],
    jsonl_path: str | None,
    out: TextIO,
) -> None:
    line: dict[str, Any]
    if not databases:
        (snapshot,) = round_.values()
        out.write(snapshot_text(snapshot))
        line = snapshot_json(snapshot)
    else:
        for key, snapshot in round_.items():
            out.write(f"## account {key} (database {databases[key]})\n")
            out.write(snapshot_text(snapshot))
        total = round_total(round_, databases)
        out.write(total_text(total))
        at = next(iter(round_.values())).at.isoformat() if round_ else None
        line = {
            "at": at,
            "accounts": {
                key: {"database": databases[key], **snapshot_json(s)} for key, s in round_.items()
            },
            "total": total,
        }
    out.flush()
    if jsonl_path is not None:
        with open(jsonl_path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line) + "\n")


def _final_total(
    snapshots: Mapping[str, Sequence[Snapshot]], databases: Mapping[str, str]
) -> dict[str, Any]:
    """The last round's total: what is open, bare and earned when the monitor stopped."""
    last = {key: taken[-1] for key, taken in snapshots.items() if taken}
    return round_total(last, databases)


def _size(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
