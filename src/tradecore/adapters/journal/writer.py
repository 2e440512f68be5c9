"""What the journal needs of a database: write a batch of rows, all or none, idempotently."""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from tradecore.adapters.journal.rows import EventRow


@runtime_checkable
class BatchWriter(Protocol):
    async def write(self, rows: Sequence[EventRow]) -> None:
        """Store `rows` in one transaction, in order. A row whose id is already stored is
        skipped, so writing the same batch twice leaves one copy. Raises if the database
        cannot be reached; the journal then spools the batch."""
        ...

    async def ping(self) -> None:
        """Return if the database answers, raise otherwise."""
        ...

    async def close(self) -> None: ...
