"""What the shared repositories need of a database connection, and how values are encoded."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

Row = Mapping[str, Any]


class Executor(Protocol):
    """Runs SQL written with PostgreSQL placeholders (`$1`, `$2`, ...)."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]: ...


class Codec(Protocol):
    """How one dialect stores Decimal, datetime and bool, and reads them back."""

    def money(self, value: Decimal | None) -> Any: ...

    def money_out(self, value: Any) -> Decimal | None: ...

    def time(self, value: datetime | None) -> Any: ...

    def time_out(self, value: Any) -> datetime | None: ...

    def flag(self, value: bool) -> Any: ...

    def recorded(self, value: datetime) -> Any:
        """An event's `recorded_at` as the column's default would write it."""
        ...


class PostgresCodec:
    """asyncpg speaks Decimal, aware datetime and bool natively."""

    def money(self, value: Decimal | None) -> Any:
        return value

    def money_out(self, value: Any) -> Decimal | None:
        return value

    def time(self, value: datetime | None) -> Any:
        return value

    def time_out(self, value: Any) -> datetime | None:
        return value

    def flag(self, value: bool) -> Any:
        return value

    def recorded(self, value: datetime) -> Any:
        return value


SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def sqlite_time(value: datetime) -> str:
    """UTC, fixed width, so text order is time order."""
    # isoformat gives SQLITE_TIME_FORMAT for a UTC time (microseconds always written), faster
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def recorded_text(moment: datetime) -> str:
    """`moment` as SQLite's `recorded_at` default writes it: strftime('%Y-%m-%dT%H:%M:%f'),
    UTC."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}"


class SqliteCodec:
    """SQLite keeps money as the exact Decimal string and time as fixed-width UTC text."""

    def money(self, value: Decimal | None) -> Any:
        return None if value is None else format(value, "f")

    def money_out(self, value: Any) -> Decimal | None:
        return None if value is None else Decimal(value)

    def time(self, value: datetime | None) -> Any:
        return None if value is None else sqlite_time(value)

    def time_out(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def flag(self, value: bool) -> Any:
        return 1 if value else 0

    def recorded(self, value: datetime) -> Any:
        return recorded_text(value)


class UniqueViolation(Exception):
    """A write hit a unique constraint; `detail` names it (driver wording)."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
