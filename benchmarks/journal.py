"""Event journal throughput and enqueue latency, PostgreSQL and SQLite, printed side by side.

    .venv/bin/python benchmarks/journal.py [--events 100000] [--baseline-events 5000]

For each database, the same kind of rows (SPEC §9 columns, JSON data with Decimals) go in:
  per-row INSERT   one awaited INSERT per event, autocommit (what the earlier bot did)
The per-row, writer and journal figures include encoding each event (JSON, Decimal as string);
creating the Event values is the caller's cost and happens before the clock starts.
  raw COPY         COPY straight into `events` in batches of 500, rows encoded beforehand
                   (the database's limit; no idempotency)
                   (SQLite: one executemany INSERT per batch of 500, no conflict clause)
  writer batches   the journal's BatchWriter: COPY to a staging table + INSERT .. ON CONFLICT
                   (SQLite: executemany INSERT .. ON CONFLICT DO NOTHING)
  journal e2e      `emit` every event from a producer that yields to the loop every 500
                   events, until `close()` has written everything: the sustained rate
and the caller's `emit` latency (p50/p99/p99.9/max). PostgreSQL runs on a throwaway server started
here from the machine's binaries (tradecore.testing.pgserver; PostgreSQL's default durability,
fsync on) and removed at the end; `TRADECORE_BENCH_PG=postgresql://…/postgres` names a server of
yours instead (a temporary database is created and dropped there). SQLite runs in a temporary file
(WAL, synchronous=FULL).
"""

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from tradecore.adapters.journal import EVENT_COLUMNS, Journal, event_row
from tradecore.adapters.postgres import PostgresDatabase
from tradecore.adapters.sql.executor import sqlite_time
from tradecore.adapters.sqlite import SqliteDatabase
from tradecore.domain.events import Event, EventType
from tradecore.testing.pgserver import PostgresServer, PostgresUnavailable

BATCH = 500
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
_COLUMNS = ", ".join(EVENT_COLUMNS)


def make_events(count: int) -> list[Event]:
    """Events shaped like the bot's: a stop update with Decimals, ids and a symbol."""
    return [
        Event(
            id=uuid.uuid4(),
            type=EventType.TRAILING_STOP_UPDATED,
            created_at=T0 + timedelta(microseconds=n),
            data={
                "old_stop": Decimal("64123.4"),
                "new_stop": Decimal("64188.15"),
                "best_price": Decimal("64510.9"),
                "improvement_percent": Decimal("0.1009"),
                "update_count": n,
            },
            correlation_id=f"op-{n % 97}",
            position_id=f"pos-{n % 97}",
            order_id=f"ord-{n}",
            symbol="BTCUSDT",
            exchange="binance",
        )
        for n in range(count)
    ]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


async def timed(action: Callable[[], Awaitable[None]]) -> float:
    gc.collect()
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


WRITE_AHEAD = True  # the journal's queue file, as the runner has it (--no-write-ahead: off)


async def journal_run(writer: object, events: list[Event], spool: str) -> tuple[float, list[int]]:
    """Sustained events/s through emit -> close, and each emit's latency in ns."""
    journal = Journal(writer, spool, write_ahead=WRITE_AHEAD)  # type: ignore[arg-type]
    journal.start()
    latencies = [0] * len(events)
    clock = time.perf_counter_ns
    gc.collect()
    start = time.perf_counter()
    for i, e in enumerate(events):
        before = clock()
        journal.emit(e)
        latencies[i] = clock() - before
        if i % BATCH == BATCH - 1:
            await asyncio.sleep(0)  # a producer that lets the loop breathe, like the bot
    await journal.close()
    elapsed = time.perf_counter() - start
    if journal.stats.spooled:
        print(f"   (journal spooled {journal.stats.spooled} events: the database fell behind)")
    return rate(len(events), elapsed), latencies


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000.0


def report(name: str, figures: dict[str, float], latencies: list[int]) -> None:
    per_row = figures["per-row INSERT"]
    print(f"\n== {name}")
    for label, value in figures.items():
        print(f"   {label:<16} {value:>12,.0f} events/s   ({value / per_row:6.1f}x per-row)")
    print(
        f"   emit latency     p50 {percentile(latencies, 0.50):.2f} µs   "
        f"p99 {percentile(latencies, 0.99):.2f} µs   "
        f"p99.9 {percentile(latencies, 0.999):.2f} µs   max {max(latencies) / 1000:.0f} µs   "
        f"mean {statistics.fmean(latencies) / 1000:.2f} µs"
    )


async def bench_postgres(admin_url: str, count: int, baseline: int, spool: str) -> None:
    admin = await asyncpg.connect(admin_url)
    name = f"tradecore_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        database = await PostgresDatabase.connect(dsn)
        conn = await asyncpg.connect(dsn)
        figures: dict[str, float] = {}

        placeholders = ", ".join(f"${i}" for i in range(1, len(EVENT_COLUMNS) + 1))
        insert = f"INSERT INTO events ({_COLUMNS}) VALUES ({placeholders})"

        few = make_events(baseline)

        async def per_row() -> None:
            for e in few:
                await conn.execute(insert, *event_row(e))

        figures["per-row INSERT"] = rate(baseline, await timed(per_row))

        encoded = [event_row(e) for e in make_events(count)]  # the limit: encoded beforehand

        async def raw_copy() -> None:
            for i in range(0, count, BATCH):
                await conn.copy_records_to_table(
                    "events", records=encoded[i : i + BATCH], columns=EVENT_COLUMNS
                )

        await conn.execute("TRUNCATE events")
        figures["raw COPY"] = rate(count, await timed(raw_copy))

        writer = database.event_writer()

        events = make_events(count)

        async def writer_batches() -> None:
            for i in range(0, count, BATCH):
                await writer.write([event_row(e) for e in events[i : i + BATCH]])

        await conn.execute("TRUNCATE events")
        figures["writer batches"] = rate(count, await timed(writer_batches))
        await writer.close()

        await conn.execute("TRUNCATE events")
        sustained, latencies = await journal_run(database.event_writer(), make_events(count), spool)
        figures["journal e2e"] = sustained
        stored = await conn.fetchval("SELECT count(*) FROM events")
        assert stored == count, f"journal stored {stored} of {count} events"
        report(f"PostgreSQL ({count:,} events; per-row on {baseline:,})", figures, latencies)
        await conn.close()
        await database.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def bench_sqlite(count: int, baseline: int, directory: str, spool: str) -> None:
    database = await SqliteDatabase.connect(os.path.join(directory, "bench.db"))
    connection = database.connection
    figures: dict[str, float] = {}
    placeholders = ", ".join("?" for _ in EVENT_COLUMNS)

    def sqlite_row(e: Event) -> tuple[object, ...]:
        r = event_row(e)
        return (str(r[0]), *r[1:11], sqlite_time(r[11]))

    few = make_events(baseline)

    async def per_row() -> None:
        for e in few:
            await connection.execute(
                f"INSERT INTO events ({_COLUMNS}) VALUES ({placeholders})", sqlite_row(e)
            )

    figures["per-row INSERT"] = rate(baseline, await timed(per_row))

    encoded = [sqlite_row(e) for e in make_events(count)]  # the limit: encoded beforehand

    async def raw_batches() -> None:
        for i in range(0, count, BATCH):
            await connection.execute("BEGIN IMMEDIATE")
            await connection.executemany(
                f"INSERT INTO events ({_COLUMNS}) VALUES ({placeholders})",
                encoded[i : i + BATCH],
            )
            await connection.execute("COMMIT")

    await connection.execute("DELETE FROM events")
    figures["raw batch INSERT"] = rate(count, await timed(raw_batches))

    writer = database.event_writer()

    events = make_events(count)

    async def writer_batches() -> None:
        for i in range(0, count, BATCH):
            await writer.write([event_row(e) for e in events[i : i + BATCH]])

    await connection.execute("DELETE FROM events")
    figures["writer batches"] = rate(count, await timed(writer_batches))

    await connection.execute("DELETE FROM events")
    sustained, latencies = await journal_run(database.event_writer(), make_events(count), spool)
    figures["journal e2e"] = sustained
    [(stored,)] = await connection.execute_fetchall("SELECT count(*) FROM events")
    assert stored == count, f"journal stored {stored} of {count} events"
    report(f"SQLite file ({count:,} events; per-row on {baseline:,})", figures, latencies)
    await database.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=5_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--no-write-ahead",
        action="store_true",
        help="the journal without its queue file (to see what the queue file costs)",
    )
    args = parser.parse_args()
    global WRITE_AHEAD
    WRITE_AHEAD = not args.no_write_ahead
    directory = tempfile.mkdtemp(prefix="tradecore-bench-")
    server: PostgresServer | None = None
    try:
        if not args.skip_postgres:
            admin_url = os.environ.get("TRADECORE_BENCH_PG")
            if admin_url is None:
                try:
                    server = await asyncio.to_thread(PostgresServer.start, durable=True)
                    admin_url = server.admin_url
                except PostgresUnavailable as exc:
                    print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
            if admin_url is not None:
                spool = os.path.join(directory, "pg.spool")
                await bench_postgres(admin_url, args.events, args.baseline_events, spool)
        await bench_sqlite(
            args.events, args.baseline_events, directory, os.path.join(directory, "sq.spool")
        )
    finally:
        if server is not None:
            await asyncio.to_thread(server.close)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
