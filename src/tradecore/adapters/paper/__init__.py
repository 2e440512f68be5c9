"""The simulated venue: an engine as strict as Binance USDⓈ-M and Bybit linear, in virtual time.

`VenueEngine` holds the state and the rules (no transport): `validation` says what a venue
refuses, `matching` fills and triggers, `engine` orchestrates, and each venue's facts and
answers are its `PaperDialect` in `venues/` (a new venue registers its own). `PaperExchange`
is the exchange port in front of it; `books` prove what was protected when; `faults` script
misbehaviour; `paths` move the mark.
"""

from tradecore.adapters.paper.books import (
    Amendment,
    Books,
    Fill,
    Interval,
    OrderClosed,
    OrderRecord,
    PositionRecord,
)
from tradecore.adapters.paper.engine import VenueEngine
from tradecore.adapters.paper.exchange import MarkStream, PaperExchange
from tradecore.adapters.paper.faults import Fault, FaultKind, FaultPlan, Op
from tradecore.adapters.paper.paths import ListPath, PathPlayer, PricePath, RandomWalk
from tradecore.adapters.paper.profiles import (
    BINANCE,
    BINANCE_REJECTIONS,
    BYBIT,
    BYBIT_REJECTIONS,
    DEFAULT_MARKS,
    PROFILES,
    Profile,
    VenueRejection,
    default_markets,
)
from tradecore.adapters.paper.venues import DIALECTS, PaperDialect, dialect_for, register

__all__ = [
    "BINANCE",
    "BINANCE_REJECTIONS",
    "BYBIT",
    "BYBIT_REJECTIONS",
    "DEFAULT_MARKS",
    "DIALECTS",
    "PROFILES",
    "Amendment",
    "Books",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "Fill",
    "Interval",
    "ListPath",
    "MarkStream",
    "Op",
    "OrderClosed",
    "OrderRecord",
    "PaperDialect",
    "PaperExchange",
    "PathPlayer",
    "PositionRecord",
    "PricePath",
    "Profile",
    "RandomWalk",
    "VenueEngine",
    "VenueRejection",
    "default_markets",
    "dialect_for",
    "register",
]
