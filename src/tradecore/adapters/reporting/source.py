"""Read-only access to tradecore's tables for the monitor and the report, on either database.

Queries are written once with PostgreSQL placeholders and run through the shared `Executor`
(SQLite translates them). Values come back decoded: time as aware datetime, money as Decimal,
event data as a dict. Nothing here writes.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import attrs

from tradecore.adapters.database import connect_store
from tradecore.adapters.dburl import Dialect, parse_database_url
from tradecore.adapters.postgres.executor import PgExecutor
from tradecore.adapters.sql.executor import Codec, Executor, PostgresCodec, Row, SqliteCodec
from tradecore.adapters.sqlite.database import MEMORY, SqliteDatabase
from tradecore.adapters.sqlite.executor import SqliteExecutor

PROBLEM_SEVERITIES = ("WARNING", "ERROR", "CRITICAL")


@attrs.frozen(kw_only=True)
class EventRow:
    seq: int
    type: str
    created_at: datetime
    severity: str
    data: Mapping[str, Any]
    position_id: str | None = None
    correlation_id: str | None = None
    order_id: str | None = None
    symbol: str | None = None
    exchange: str | None = None
    error_message: str | None = None

    @property
    def subject(self) -> str | None:
        """The position this event is about (trailing events carry it as correlation id)."""
        return self.position_id or self.correlation_id

    def money(self, key: str) -> Decimal | None:
        value = self.data.get(key)
        return None if value is None else Decimal(str(value))


@attrs.frozen(kw_only=True)
class PositionRow:
    id: str
    exchange: str
    symbol: str
    side: str
    state: str
    quantity: Decimal
    entry_price: Decimal | None
    stop_price: Decimal | None
    stop_owner: str | None
    exit_price: Decimal | None
    realized_pnl: Decimal | None
    created_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    adopted: bool
    updated_at: datetime | None = None  # the row's last write (store clock): which copy is newer


@attrs.frozen(kw_only=True)
class OperationRow:
    kind: str
    exchange: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None


@attrs.frozen(kw_only=True)
class TrailingRow:
    position_id: str
    phase: str
    update_count: int
    best_price: Decimal | None
    last_update_at: datetime | None


@attrs.frozen(kw_only=True)
class AlertRow:
    key: str
    severity: str
    title: str
    text: str
    delivered: bool
    created_at: datetime


_EVENT_COLUMNS = (
    "seq, event_type, created_at, severity, event_data, position_id, correlation_id, "
    "order_id, symbol, exchange, error_message"
)
TERMINAL = ("closed", "failed", "rolled_back")  # states with nothing on the venue
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(9999, 1, 1, tzinfo=UTC)


class Reader:
    """Open with `open_reader(url)`; close with `close()`."""

    def __init__(self, executor: Executor, codec: Codec, closer: Any) -> None:
        self._db = executor
        self._c = codec
        self._closer = closer

    async def close(self) -> None:
        await self._closer()

    def _time(self, value: Any) -> datetime:
        decoded = self._c.time_out(value)
        assert decoded is not None
        return decoded

    def _event(self, row: Row) -> EventRow:
        raw = row["event_data"]
        data = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return EventRow(
            seq=int(row["seq"]),
            type=row["event_type"],
            created_at=self._time(row["created_at"]),
            severity=row["severity"],
            data=data,
            position_id=row["position_id"],
            correlation_id=row["correlation_id"],
            order_id=row["order_id"],
            symbol=row["symbol"],
            exchange=row["exchange"],
            error_message=row["error_message"],
        )

    async def events(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[EventRow]:
        """Events in [since, until), oldest first (ties in insertion order)."""
        rows = await self._db.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE created_at >= $1 AND created_at < $2 "
            "ORDER BY created_at, seq",
            self._c.time(since or _BEGINNING),
            self._c.time(until or _END),
        )
        return [self._event(r) for r in rows]

    async def events_of(self, position_id: str) -> list[EventRow]:
        rows = await self._db.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE position_id = $1 OR correlation_id = $1 "
            "ORDER BY created_at, seq",
            position_id,
        )
        return [self._event(r) for r in rows]

    async def count_by_type(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = await self._db.fetch(
            "SELECT event_type, COUNT(*) AS n FROM events "
            "WHERE created_at >= $1 AND created_at < $2 GROUP BY event_type",
            self._c.time(since),
            self._c.time(until),
        )
        return {r["event_type"]: int(r["n"]) for r in rows}

    async def problems(self, since: datetime, until: datetime) -> list[EventRow]:
        """Warnings and worse in [since, until)."""
        rows = await self._db.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events "
            "WHERE created_at >= $1 AND created_at < $2 AND severity IN ($3, $4, $5) "
            "ORDER BY created_at, seq",
            self._c.time(since),
            self._c.time(until),
            *PROBLEM_SEVERITIES,
        )
        return [self._event(r) for r in rows]

    async def last_of(self, event_type: str) -> datetime | None:
        rows = await self._db.fetch(
            "SELECT MAX(created_at) AS at FROM events WHERE event_type = $1", event_type
        )
        return self._c.time_out(rows[0]["at"]) if rows else None

    async def found_bare(self) -> set[str]:
        """Positions whose latest `unprotected_position_found` is later than their latest
        stop placed or replaced: the guard last saw them bare and nothing has fixed it.

        Judged on the events' own time, not on the order rows were stored in: a stop event
        is stored with the position's row at once, an event emitted before it may reach the
        table later (the journal writes in batches). A stop event at the same instant as the
        finding is its repair (the finding comes first in a pass)."""
        rows = await self._db.fetch(
            "SELECT position_id, event_type, MAX(created_at) AS at FROM events "
            "WHERE event_type IN ($1, $2, $3) AND position_id IS NOT NULL "
            "GROUP BY position_id, event_type",
            "unprotected_position_found",
            "stop_loss_placed",
            "stop_loss_replaced",
        )
        found: dict[str, datetime] = {}
        placed: dict[str, datetime] = {}
        for r in rows:
            at = self._c.time_out(r["at"])
            if at is None:
                continue
            into = found if r["event_type"] == "unprotected_position_found" else placed
            pid = str(r["position_id"])
            into[pid] = max(into.get(pid, at), at)
        return {pid for pid, at in found.items() if pid not in placed or at > placed[pid]}

    async def last_event_at(self) -> datetime | None:
        rows = await self._db.fetch("SELECT MAX(created_at) AS at FROM events")
        return self._c.time_out(rows[0]["at"]) if rows else None

    async def events_of_many(self, position_ids: Sequence[str]) -> list[EventRow]:
        """The events of each of `position_ids` (by position or correlation id), oldest first."""
        if not position_ids:
            return []
        marks = ", ".join(f"${i + 1}" for i in range(len(position_ids)))
        rows = await self._db.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE position_id IN ({marks}) "
            f"OR correlation_id IN ({marks}) ORDER BY created_at, seq",
            *position_ids,
        )
        return [self._event(r) for r in rows]

    async def latest_of(self, event_types: Sequence[str], limit: int) -> list[EventRow]:
        """The last `limit` events of these types, oldest first."""
        marks = ", ".join(f"${i + 2}" for i in range(len(event_types)))
        rows = await self._db.fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_type IN ({marks}) "
            "ORDER BY seq DESC LIMIT $1",
            limit,
            *event_types,
        )
        return [self._event(r) for r in reversed(rows)]

    async def trailing(self) -> list[TrailingRow]:
        """Each trailing stop's phase and figures as last journaled."""
        rows = await self._db.fetch(
            "SELECT position_id, phase, state FROM trailing_stops ORDER BY position_id"
        )
        found = []
        for r in rows:
            raw = r["state"]
            state = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
            best, last = state.get("best_price"), state.get("last_update_at")
            found.append(
                TrailingRow(
                    position_id=r["position_id"],
                    phase=r["phase"],
                    update_count=int(state.get("update_count") or 0),
                    best_price=None if best is None else Decimal(str(best)),
                    last_update_at=None if last is None else datetime.fromisoformat(last),
                )
            )
        return found

    async def alerts(self, limit: int) -> list[AlertRow]:
        """The last `limit` alerts raised, oldest first."""
        rows = await self._db.fetch(
            "SELECT key, severity, title, text, delivered, created_at FROM alerts "
            "ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [
            AlertRow(
                key=r["key"],
                severity=r["severity"],
                title=r["title"],
                text=r["text"],
                delivered=bool(r["delivered"]),
                created_at=self._time(r["created_at"]),
            )
            for r in reversed(rows)
        ]

    async def positions(self, *, open_only: bool = False) -> list[PositionRow]:
        rows = await self._db.fetch(
            "SELECT id, exchange, symbol, side, state, quantity, entry_price, stop_price, "
            "stop_owner, exit_price, realized_pnl, created_at, opened_at, closed_at, "
            "close_reason, adopted, updated_at FROM positions "
            "WHERE $1 = 0 OR state NOT IN ($2, $3, $4) ORDER BY created_at, id",
            1 if open_only else 0,
            *TERMINAL,
        )
        return [self._position(r) for r in rows]

    def _position(self, row: Row) -> PositionRow:
        money = self._c.money_out
        return PositionRow(
            id=row["id"],
            exchange=row["exchange"],
            symbol=row["symbol"],
            side=row["side"],
            state=row["state"],
            quantity=money(row["quantity"]) or Decimal(0),
            entry_price=money(row["entry_price"]),
            stop_price=money(row["stop_price"]),
            stop_owner=row["stop_owner"],
            exit_price=money(row["exit_price"]),
            realized_pnl=money(row["realized_pnl"]),
            created_at=self._time(row["created_at"]),
            opened_at=self._c.time_out(row["opened_at"]),
            closed_at=self._c.time_out(row["closed_at"]),
            close_reason=row["close_reason"],
            adopted=bool(row["adopted"]),
            updated_at=self._c.time_out(row["updated_at"]),
        )

    async def operations(self) -> list[OperationRow]:
        rows = await self._db.fetch(
            "SELECT kind, exchange, started_at, finished_at, outcome FROM operations "
            "ORDER BY started_at"
        )
        return [
            OperationRow(
                kind=r["kind"],
                exchange=r["exchange"],
                started_at=self._time(r["started_at"]),
                finished_at=self._c.time_out(r["finished_at"]),
                outcome=r["outcome"],
            )
            for r in rows
        ]


async def open_reader(url: str) -> Reader:
    """A reader on the database at `url`. It never migrates and never creates a database file:
    it reads what is there, and refuses a database without tradecore's tables."""
    parsed = parse_database_url(url)
    if parsed.dialect is Dialect.POSTGRESQL:
        connection = await asyncpg.connect(parsed.url, timeout=10)
        reader = Reader(PgExecutor(connection), PostgresCodec(), connection.close)
    else:
        assert parsed.path is not None
        if parsed.path != MEMORY and not Path(parsed.path).is_file():
            raise FileNotFoundError(f"no database file at {parsed.path}")
        database = await connect_store(parsed, apply_migrations=False)
        assert isinstance(database, SqliteDatabase)
        executor = SqliteExecutor(database.connection, database.lock)
        reader = Reader(executor, SqliteCodec(), database.close)
    try:
        await reader.last_event_at()
    except Exception as exc:
        await reader.close()
        raise LookupError(
            f"no tradecore tables in this database ({type(exc).__name__}); run `migrate` or "
            "check the URL"
        ) from exc
    return reader


def positions_by_id(rows: Sequence[PositionRow]) -> dict[str, PositionRow]:
    return {p.id: p for p in rows}
