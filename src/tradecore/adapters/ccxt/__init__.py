"""The exchange port on ccxt for Binance USDⓈ-M and Bybit linear (see docs/venues.md)."""

from tradecore.adapters.ccxt.errors import command_outcome, query_failure, reason_for, venue_answer
from tradecore.adapters.ccxt.exchange import CAPABILITIES, CcxtExchange, Environment, build_client
from tradecore.adapters.ccxt.profiles import BINANCE, BYBIT, PROFILES, CcxtProfile
from tradecore.adapters.ccxt.streams import MarkFeed, event_status

__all__ = [
    "BINANCE",
    "BYBIT",
    "CAPABILITIES",
    "PROFILES",
    "CcxtExchange",
    "CcxtProfile",
    "Environment",
    "MarkFeed",
    "build_client",
    "command_outcome",
    "event_status",
    "query_failure",
    "reason_for",
    "venue_answer",
]
