"""A trading signal as tradecore accepts it (validation lives in `waves`)."""

from datetime import datetime
from decimal import Decimal

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
