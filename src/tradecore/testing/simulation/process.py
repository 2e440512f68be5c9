"""The parts of the simulated world around the application: the ports it is given, wrapped so
that a crash can hit any await and the database can go away; the signal stream; the journal.
"""

import asyncio
import contextlib
import functools
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.journal.rows import EVENT_COLUMNS, EventRow
from tradecore.adapters.sql.executor import sqlite_time
from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.sqlite.executor import immediate
from tradecore.adapters.virtual_time import REPOSITORIES, ThreadWork
from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.signals import Signal
from tradecore.ports.events import EventSink
from tradecore.ports.repositories import StoreUnavailable


class Crash(BaseException):
    """The process dies here. A BaseException: no `except Exception` in the app catches it."""


# Store methods that change the journal (the rest read it).
_WRITES = (
    "add",
    "save",
    "finish",
    "start",
    "record",
    "put",
    "set",
    "claim",
    "upsert",
    "delete",
    "remove",
    "mark",
    "update",
    "begin",
    "end",
    "store",
    "replace",
    "clear",
)


class Process:
    """One life of the application: its crash trigger, its calls in flight, its id space."""

    def __init__(self, number: int, work: ThreadWork) -> None:
        self.number = number
        self.work = work
        self.dead = False
        self.armed: tuple[str, int] | None = None  # (crash point, matching calls left)
        self.crash_point: str | None = None
        self.on_crash: Callable[[str], None] = lambda point: None

    def arm(self, point: str, after_calls: int) -> None:
        """Die at the `after_calls`-th await matching `point` (`exchange.command:after`, ...)."""
        self.armed = (point, after_calls)

    async def around(self, port: str, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        if self.dead:
            raise Crash("the process is dead")
        hit = False
        armed = self.armed
        if armed is not None:  # the call's crash point, only when one is armed
            where = f"{port}.{_kind(port, name)}"
            if armed[0].startswith(where + ":"):
                point, left = armed
                hit = left <= 1
                self.armed = None if hit else (point, left - 1)
                if hit and point.endswith(":before"):
                    self._die(point)
        result = await call()
        if hit:
            self._die(f"{port}.{_kind(port, name)}:after")
        if self.dead:
            raise Crash("the process is dead")
        return result

    def _die(self, point: str) -> None:
        self.dead = True
        self.crash_point = point
        self.on_crash(point)
        raise Crash(point)


def _kind(port: str, name: str) -> str:
    if port == "exchange":
        return "query" if name.startswith(("fetch", "load", "watch")) else "command"
    return "command" if name.startswith(_WRITES) else "query"


_COROUTINES: dict[Any, bool] = {}  # by function: whether it is a coroutine function


def _is_coroutine(value: Any) -> bool:
    """`asyncio.iscoroutinefunction`, remembered by function (looked up at every port call)."""
    function = getattr(value, "__func__", value)
    try:
        return _COROUTINES[function]
    except KeyError:
        pass
    except TypeError:  # not hashable
        return asyncio.iscoroutinefunction(value)
    answer = _COROUTINES[function] = asyncio.iscoroutinefunction(value)
    return answer


class _Named:
    """A port whose coroutine methods go through `around(port, name, call)`."""

    def __init__(self, target: Any, port: str, around: Callable[..., Awaitable[Any]]) -> None:
        self._target = target
        self._port = port
        self._around = around

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not _is_coroutine(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            return self._around(self._port, name, lambda: value(*args, **kwargs))

        return call


class Outage:
    """The database switch: while `down`, every store call raises StoreUnavailable."""

    def __init__(self) -> None:
        self.down = False

    def check(self) -> None:
        if self.down:
            raise StoreUnavailable("the simulator cut the database")


class SimStore:
    """The `Store` port as one process sees it: counted (virtual time waits for it), cut
    during an outage, and crashable at any call (a transaction's begin and commit too)."""

    def __init__(
        self,
        inner: Any,
        process: Process,
        outage: Outage,
        answered: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._inner = inner
        self._process = process
        self._outage = outage
        self._answered = answered  # the world, after a call's answer came (a slow answer)
        for name in REPOSITORIES:
            setattr(self, name, _Named(getattr(inner, name), "store", self._around))

    async def _around(self, port: str, name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        self._outage.check()
        answer = await self._process.around(port, name, lambda: self._process.work.counted(call()))
        if self._answered is not None:
            await self._answered(name)
            if self._process.dead:
                raise Crash("the process is dead")
        return answer

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["SimStore"]:
        self._outage.check()
        if self._process.dead:
            raise Crash("the process is dead")
        opened = self._inner.transaction()
        inner = await self._process.work.counted(opened.__aenter__())
        try:
            yield SimStore(inner, self._process, self._outage, self._answered)
        except BaseException as error:
            if not await self._process.work.counted(
                opened.__aexit__(type(error), error, error.__traceback__)
            ):
                raise
        else:
            await self._process.work.counted(opened.__aexit__(None, None, None))


# What the world may do around one exchange call: given the call's name and arguments and
# the call itself, it returns what the application gets (by default: the call's answer).
Around = Callable[
    [str, tuple[Any, ...], dict[str, Any], Callable[[], Awaitable[Any]]], Awaitable[Any]
]


class _Exchange(_Named):
    """The exchange port as one process sees it: crashable at any call, and with the world's
    `around` between the application and the venue (a slow answer, a person acting just
    before a read reaches the venue)."""

    def __init__(self, target: Any, process: Process, around: Around) -> None:
        super().__init__(target, "exchange", process.around)
        self._world = around

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not _is_coroutine(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            def send() -> Awaitable[Any]:
                return value(*args, **kwargs)

            return self._around(self._port, name, lambda: self._world(name, args, kwargs, send))

        return call


def sim_exchange(exchange: Any, process: Process, around: Around | None = None) -> Any:
    if around is None:
        return _Named(exchange, "exchange", process.around)
    return _Exchange(exchange, process, around)


class SimIds:
    """Deterministic ids, a separate space per process (so no two lives collide)."""

    def __init__(self, process: int) -> None:
        self._process = process
        self._next = 0

    def new_id(self) -> str:
        self._next += 1
        return f"p{self._process}x{self._next}"

    def new_uuid(self) -> uuid.UUID:
        self._next += 1
        return uuid.UUID(int=(self._process << 64) | self._next)


class SignalStream:
    """The signal service: delivers each signal at its `created_at`, drops them in an outage."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Signal | None] = asyncio.Queue()
        self.down = False
        self.dropped = 0

    def deliver(self, signal: Signal) -> None:
        if self.down:
            self.dropped += 1
        else:
            self._queue.put_nowait(signal)

    async def signals(self) -> AsyncIterator[Signal]:
        while True:
            signal = await self._queue.get()
            if signal is None:
                return
            yield signal

    async def close(self) -> None:
        self._queue.put_nowait(None)

    def reconnect(self) -> "SignalStream":
        """A new process connects afresh: what the old one had not taken is gone."""
        fresh = SignalStream()
        fresh.down = self.down
        fresh.dropped = self.dropped
        return fresh


async def inline_sqlite(clock: VirtualClock | None = None) -> SqliteDatabase:
    """The real SQLite store (same SQL, same sqlite3) in memory, its calls run on the event
    loop's thread instead of aiosqlite's worker: no thread hop per call (the simulator's
    main cost otherwise) and no real-time race between a query and the next task. Each call
    still yields to the loop once, so tasks interleave at every store call. `clock` stamps
    what the store writes (`updated_at`, the `recorded_at` of events saved with a change):
    the same on every run of a seed."""
    connection = aiosqlite.Connection(
        functools.partial(
            sqlite3.connect, ":memory:", isolation_level=None, check_same_thread=False
        ),
        64,
    )
    worker = getattr(connection, "_thread", None)
    if worker is not None:
        worker.daemon = True
    await connection

    reads: ReadCache | None = None
    fetchall = connection._execute_fetchall

    async def inline(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        if reads is not None and fn == fetchall:
            return reads.fetchall(*args)
        return fn(*args, **kwargs)

    connection._execute = inline  # type: ignore[method-assign]
    connection.row_factory = sqlite3.Row
    await connection.execute("PRAGMA foreign_keys = ON")
    database = SqliteDatabase(":memory:", connection, clock)
    await database.migrate()
    reads = ReadCache(connection._conn)  # after the schema: every table is watched
    return database


_TABLES_READ = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
# a SELECT whose answer may change without a write (a clock, randomness, the connection's state)
_NOT_A_PURE_READ = re.compile(
    r"\b(?:now|random|randomblob|current_\w+|changes|total_changes|last_insert_rowid)\b",
    re.IGNORECASE,
)


class ReadCache:
    """The in-memory database's repeated reads answered from the rows the same SELECT with the
    same arguments returned last time, while no table it reads has been written since.

    The database is the simulator's own `:memory:` connection, so every write goes through
    it; a TEMP trigger on every table (insert, update, delete: per row, cascades and triggers
    included) counts that table's writes, whichever path the write took. Nothing is served or
    kept inside a transaction (a rollback would take back writes already counted). The SQL
    still runs for every write and for the first read after one; the answer is the same rows
    SQLite gave, so the application reads what it would have read."""

    MAX_ENTRIES = 4096

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw
        self._written: dict[str, int] = {}
        self._rows: dict[tuple[str, Any], tuple[tuple[int, ...], list[Any]]] = {}
        self._plans: dict[str, tuple[str, ...] | None] = {}
        self.hits = self.misses = 0
        raw.create_function("tradecore_sim_written", 1, self._write)
        tables = [
            name
            for (name,) in raw.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        ]
        for table in tables:
            self._written[table] = 0
            for action in ("INSERT", "UPDATE", "DELETE"):
                raw.execute(
                    f'CREATE TEMP TRIGGER "tradecore_sim_{table}_{action.lower()}" '
                    f'AFTER {action} ON main."{table}" '
                    f"BEGIN SELECT tradecore_sim_written('{table}'); END"
                )

    def _write(self, table: str) -> None:
        self._written[table] += 1

    def _tables(self, sql: str) -> tuple[str, ...] | None:
        """The tables a cacheable SELECT reads (None: not one to answer from memory)."""
        try:
            return self._plans[sql]
        except KeyError:
            pass
        tables: tuple[str, ...] | None = tuple(sorted(set(_TABLES_READ.findall(sql))))
        if (
            not sql.lstrip().upper().startswith("SELECT")
            or _NOT_A_PURE_READ.search(sql)
            or not tables
            or any(table not in self._written for table in tables)
        ):
            tables = None
        self._plans[sql] = tables
        return tables

    def fetchall(self, sql: str, parameters: Any) -> list[Any]:
        raw = self._raw
        tables = None if raw.in_transaction else self._tables(sql)
        if tables is None:
            return raw.execute(sql, parameters).fetchall()
        try:
            key = (sql, tuple(parameters))
            hash(key)
        except TypeError:  # an argument that is not hashable: just read
            return raw.execute(sql, parameters).fetchall()
        written = self._written
        version = tuple(written[table] for table in tables)
        held = self._rows.get(key)
        if held is not None and held[0] == version:
            self.hits += 1
            return list(held[1])
        self.misses += 1
        rows = raw.execute(sql, parameters).fetchall()
        if len(self._rows) >= self.MAX_ENTRIES:
            self._rows.clear()
        self._rows[key] = (version, rows)
        return list(rows)


class SimEventWriter:
    """The journal's SQLite writer, stamping `recorded_at` from the virtual clock so the
    events table is the same, byte for byte, on every run of a seed."""

    def __init__(self, database: SqliteDatabase, clock: VirtualClock) -> None:
        self._database = database
        self._clock = clock
        columns = (*EVENT_COLUMNS, "recorded_at")
        self._insert = (
            f"INSERT INTO events ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT (id) DO NOTHING"
        )

    async def write(self, rows: Sequence[EventRow]) -> None:
        at = sqlite_time(self._clock.now())
        params = [(str(r[0]), *r[1:11], sqlite_time(r[11]), at) for r in rows]
        connection = self._database.connection
        async with self._database.lock, immediate(connection):
            await connection.executemany(self._insert, params)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class CheckedSink:
    """Passes every event to the journal and to the checker as it is emitted."""

    def __init__(self, inner: EventSink, on_event: Callable[[Event], None]) -> None:
        self.inner = inner
        self.on_event = on_event
        self.events: list[Event] = []
        self.seen: set[uuid.UUID] = set()
        self.read_to = 0  # the events table's rows up to this seq were read (`catch_up`)

    def emit(self, event: Event) -> None:
        if event.id in self.seen:  # stored with its change, found by `catch_up` first
            self.inner.emit(event)
            return
        self.seen.add(event.id)
        self.events.append(event)
        self.on_event(event)
        self.inner.emit(event)

    async def catch_up(self, database: SqliteDatabase) -> int:
        """Tell the checker of the events the journal stores that were never emitted: a
        process that died right after the store wrote a change with its events (one write,
        `PositionRepository.save`) never handed them to the sink (bybit seed 1607). How
        many there were."""
        rows = await database.connection.execute_fetchall(
            f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events WHERE seq > ? ORDER BY seq",
            (self.read_to,),
        )
        found = 0
        for row in rows:
            self.read_to = max(self.read_to, int(row["seq"]))
            event = stored_event(row)
            if event.id in self.seen:
                continue
            found += 1
            self.seen.add(event.id)
            self.events.append(event)
            self.on_event(event)
        return found

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


def stored_event(row: Any) -> Event:
    """An events table row as the event it was (data as the journal's JSON holds it:
    Decimal as its exact string)."""
    return Event(
        id=uuid.UUID(str(row["id"])),
        type=EventType(row["event_type"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        severity=Severity[row["severity"]],
        data=json.loads(row["event_data"] or "{}"),
        correlation_id=row["correlation_id"],
        position_id=row["position_id"],
        order_id=row["order_id"],
        symbol=row["symbol"],
        exchange=row["exchange"],
        error_message=row["error_message"],
        stack_trace=row["stack_trace"],
    )


async def journal_digest(database: SqliteDatabase) -> tuple[str, int]:
    """sha256 over every column of every row of the events table, in insertion order."""
    rows = list(await database.connection.execute_fetchall("SELECT * FROM events ORDER BY seq"))
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
        digest.update(b"\n")
    return digest.hexdigest(), len(rows)
