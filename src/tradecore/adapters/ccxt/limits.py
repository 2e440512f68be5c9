"""The venues' published REST limits, and what each request costs in them.

Each venue's budgets and request weights are its dialect's `limits`
(`adapters/ccxt/venues/<venue>.py`, with their sources; docs/venues.md, "Rate limits", keeps
the table and links). A request a venue's table does not name is charged a conservative
weight, never nothing.
"""

from tradecore.adapters.ccxt.limiter import VenueLimits
from tradecore.adapters.ccxt.venues import ByVenue

VENUE_LIMITS: ByVenue[VenueLimits] = ByVenue(lambda dialect: dialect.limits)
