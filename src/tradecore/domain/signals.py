"""A trading signal as tradecore accepts it (validation lives in `waves`), and its fate."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.model import Side, Venue


@attrs.frozen(kw_only=True)
class Signal:
    """A validated signal: open `side` on `symbol` at `venue`, belonging to the wave `wave`."""

    id: str
    symbol: str  # plain, e.g. BTCUSDT
    venue: Venue
    side: Side
    score_week: Decimal
    score_month: Decimal
    wave: datetime  # the quarter-hour the signal belongs to (its `timestamp`)
    created_at: datetime


class Fate(StrEnum):
    """How a received signal ended. Each signal gets exactly one, as the `fate` field of one
    event (its `signal_id` names the signal); the summary counts them (issue 12, item 4)."""

    OPENED = "opened"  # signal_executed
    OPEN_FAILED = "open_failed"  # signal_execution_failed, or sizing refused it (reason)
    # signal_executed: the entry was sent, the venue has not proven its state yet; the open
    # stays in flight and its position's events say how it ended (protected, or failed)
    OPEN_UNPROVEN = "open_unproven"
    FILTERED = "filtered"  # signal_filtered (reason)
    RANKED_OUT = "ranked_out"  # signal_ranked_out: passed, below the wave's candidates
    RESERVE_UNUSED = "reserve_unused"  # signal_ranked_out: a reserve the wave did not need
    DUPLICATE = "duplicate"  # signal_filtered: a better signal of its symbol, or its wave
    # was processed before (a second session on the same database)
    EXPIRED = "expired"  # signal_expired: its wave was taken before it came, or never will be
    REJECTED = "rejected"  # signal_rejected: the message does not parse or validate
