"""The exchange port on ccxt, one dialect per venue (see docs/venues.md, docs/extending.md)."""

from tradecore.adapters.ccxt.errors import command_outcome, query_failure, reason_for, venue_answer
from tradecore.adapters.ccxt.exchange import CAPABILITIES, CcxtExchange, Environment, build_client
from tradecore.adapters.ccxt.profiles import CcxtProfile
from tradecore.adapters.ccxt.streams import MarkFeed, event_status
from tradecore.adapters.ccxt.venues import ByVenue, CcxtDialect, dialect_for, register
from tradecore.adapters.ccxt.venues.binance import PROFILE as BINANCE
from tradecore.adapters.ccxt.venues.bybit import PROFILE as BYBIT

PROFILES = ByVenue(lambda dialect: dialect.profile)

__all__ = [
    "BINANCE",
    "BYBIT",
    "CAPABILITIES",
    "PROFILES",
    "CcxtDialect",
    "CcxtExchange",
    "CcxtProfile",
    "Environment",
    "MarkFeed",
    "build_client",
    "command_outcome",
    "dialect_for",
    "event_status",
    "query_failure",
    "reason_for",
    "register",
    "venue_answer",
]
