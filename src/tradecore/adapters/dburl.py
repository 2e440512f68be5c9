"""Database URLs: `postgresql://user@host:port/dbname` or `sqlite:///path` (`sqlite:///:memory:`).

A wrong URL is refused with a message naming the part that is wrong.
"""

from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import attrs


class InvalidDatabaseUrl(ValueError):
    """A database URL tradecore cannot use; the message names the wrong part."""


class Dialect(StrEnum):
    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"


_PG_SCHEMES = {"postgresql", "postgres"}
MEMORY = ":memory:"


@attrs.frozen(kw_only=True)
class DatabaseUrl:
    dialect: Dialect
    url: str  # as given; for PostgreSQL the asyncpg DSN
    path: str | None = None  # SQLite: a file path or ":memory:"
    database: str | None = None  # PostgreSQL: the database name

    @property
    def is_memory(self) -> bool:
        return self.path == MEMORY

    def redacted(self) -> str:
        """The URL without its password, for logs and messages."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()


def parse_database_url(raw: str) -> DatabaseUrl:
    """Parse and validate `raw`, or raise InvalidDatabaseUrl naming the wrong part."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidDatabaseUrl(
            "the database URL is empty; use postgresql://user@host:5432/dbname "
            "or sqlite:///path/to/tradecore.db"
        )
    text = raw.strip()
    scheme, sep, _ = text.partition("://")
    if not sep:
        raise InvalidDatabaseUrl(
            f"the database URL {text!r} has no scheme; it must start with "
            "postgresql:// or sqlite:///"
        )
    scheme = scheme.lower()
    if scheme in _PG_SCHEMES:
        return _postgres(text)
    if scheme == "sqlite":
        return _sqlite(text)
    raise InvalidDatabaseUrl(
        f"the scheme {scheme!r} is not supported; use postgresql:// or sqlite:///"
    )


def _postgres(text: str) -> DatabaseUrl:
    parts = urlsplit(text)
    if not parts.hostname and "host=" not in parts.query:
        raise InvalidDatabaseUrl(
            "the PostgreSQL URL has no host; e.g. postgresql://postgres@127.0.0.1:5432/tradecore"
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidDatabaseUrl(
            "the port of the PostgreSQL URL is not a number between 1 and 65535"
        ) from None
    if port == 0:
        raise InvalidDatabaseUrl("the port of the PostgreSQL URL must be between 1 and 65535")
    database = parts.path.lstrip("/")
    if not database:
        raise InvalidDatabaseUrl(
            "the PostgreSQL URL names no database; add it after the host, e.g. .../tradecore"
        )
    if "/" in database:
        raise InvalidDatabaseUrl(
            f"the database name {database!r} of the PostgreSQL URL contains '/'"
        )
    return DatabaseUrl(dialect=Dialect.POSTGRESQL, url=text, database=database)


def _sqlite(text: str) -> DatabaseUrl:
    rest = text[len("sqlite://") :]
    if not rest.startswith("/"):
        raise InvalidDatabaseUrl(
            "the SQLite URL needs three slashes and a path: sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    path = rest[1:]
    if "?" in path or "#" in path:
        raise InvalidDatabaseUrl("the SQLite URL takes no query or fragment after the path")
    if not path:
        raise InvalidDatabaseUrl(
            "the SQLite URL has no path; e.g. sqlite:///var/tradecore.db or sqlite:///:memory:"
        )
    if path == MEMORY:
        return DatabaseUrl(dialect=Dialect.SQLITE, url=text, path=MEMORY)
    if path.endswith("/"):
        raise InvalidDatabaseUrl(f"the SQLite path {path!r} is a directory, not a file")
    parent = Path(path).parent
    if not parent.is_dir():
        raise InvalidDatabaseUrl(f"the directory {str(parent)!r} of the SQLite path does not exist")
    return DatabaseUrl(dialect=Dialect.SQLITE, url=text, path=path)
