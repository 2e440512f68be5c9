"""The live dashboard: a read-only page of the bot's positions, stops, waves, alerts, PnL and
health, pushed to the browser by server-sent events (docs/operations.md, "The dashboard").

`DatabaseViews` builds the view from the journal (plus `Live` facts when the bot serves it),
`Feed` refreshes and pushes it, `mount` adds the routes to an aiohttp application;
`mount_accounts` serves several accounts' databases, with a page listing them.
"""

from .feed import DatabaseViews, Feed, account_feeds, accounts_overview
from .view import Inputs, Live, build_view
from .web import COOKIE, PREFIX, binding_problem, is_loopback, mount, mount_accounts

__all__ = [
    "COOKIE",
    "PREFIX",
    "DatabaseViews",
    "Feed",
    "Inputs",
    "Live",
    "account_feeds",
    "accounts_overview",
    "binding_problem",
    "build_view",
    "is_loopback",
    "mount",
    "mount_accounts",
]
