"""A position's fills, read once from the venue for every question asked of them: did one
of the bot's orders trade (`domain.pnl.traded`), whose position the venue holds after a stop
filled (`domain.pnl.opened_after`), and what the close's figures are (`Settlement`)."""

from collections.abc import Sequence
from datetime import timedelta

from tradecore.domain.pnl import Fill
from tradecore.domain.positions import Position
from tradecore.ports.exchange import Exchange

# Fills are asked for from this long before the position was created: the venue stamps them
# on its own clock, which may run behind ours (docs/venues.md, Clock drift).
CLOCK_MARGIN = timedelta(minutes=1)


async def read_fills(exchange: Exchange, position: Position) -> Sequence[Fill]:
    """The account's fills on `position`'s symbol since it was created (with the margin),
    oldest first: every fill of its orders among them. Raises ExchangeUnavailable."""
    return await exchange.fetch_fills(position.symbol, since=position.created_at - CLOCK_MARGIN)
