"""The event journal: an `EventSink` that never waits for the database, writes batches
through a `BatchWriter`, and keeps events in a local spool while the database is away;
`WriteSpoolFile` keeps the store writes that wait for the database the same way."""

from tradecore.adapters.journal.journal import Journal, JournalStats
from tradecore.adapters.journal.rows import EVENT_COLUMNS, EventRow, event_row
from tradecore.adapters.journal.spool import Spool
from tradecore.adapters.journal.writer import BatchWriter
from tradecore.adapters.journal.writes import WriteSpoolFile

__all__ = [
    "EVENT_COLUMNS",
    "BatchWriter",
    "EventRow",
    "Journal",
    "JournalStats",
    "Spool",
    "WriteSpoolFile",
    "event_row",
]
