"""PostgreSQL (asyncpg): the store, the journal's COPY writer, the advisory instance lock."""

from tradecore.adapters.postgres.database import PostgresDatabase, migrate_postgres
from tradecore.adapters.postgres.journal import PostgresEventWriter
from tradecore.adapters.postgres.lock import PostgresInstanceLock

__all__ = ["PostgresDatabase", "PostgresEventWriter", "PostgresInstanceLock", "migrate_postgres"]
