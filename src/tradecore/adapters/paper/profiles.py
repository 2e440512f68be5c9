"""The simulated venues by name: each venue's dialect lives in `venues/<venue>.py`.

Kept for the names code outside the paper engine uses: `Profile` is `PaperDialect`,
`PROFILES` the registry of dialects by venue, `default_markets(venue)` a dialect's markets.
"""

from decimal import Decimal

from tradecore.adapters.paper.venues import (
    BINANCE,
    BYBIT,
    DIALECTS,
    PaperDialect,
    VenueRejection,
    dialect_for,
)
from tradecore.domain.model import Venue
from tradecore.domain.precision import MarketRules

Profile = PaperDialect
PROFILES = DIALECTS
BINANCE_REJECTIONS = BINANCE.rejections
BYBIT_REJECTIONS = BYBIT.rejections


def default_markets(venue: Venue) -> tuple[MarketRules, ...]:
    """The markets a simulated account of `venue` trades unless told otherwise."""
    return dialect_for(venue).markets


DEFAULT_MARKS = {
    "BTCUSDT": Decimal("50000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
    "1000PEPEUSDT": Decimal("0.0123456"),
}

__all__ = [
    "BINANCE",
    "BINANCE_REJECTIONS",
    "BYBIT",
    "BYBIT_REJECTIONS",
    "DEFAULT_MARKS",
    "PROFILES",
    "Profile",
    "VenueRejection",
    "default_markets",
]
