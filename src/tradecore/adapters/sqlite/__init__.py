"""SQLite (aiosqlite): the embedded store, the journal's writer, a file instance lock."""

from tradecore.adapters.sqlite.database import SqliteDatabase
from tradecore.adapters.sqlite.journal import SqliteEventWriter
from tradecore.adapters.sqlite.lock import FileInstanceLock

__all__ = ["FileInstanceLock", "SqliteDatabase", "SqliteEventWriter"]
