"""A stop put back at the bot's level that the venue refuses because the mark crossed that
level while the command travelled: the position is closed at market in the same pass, as
when the guard's read already showed the mark past it (issue 10, story 3's rule)."""

from decimal import Decimal
from typing import Any, cast

from tradecore.domain.model import Side
from tradecore.domain.positions import StopOwner
from tradecore.ports.exchange import Exchange
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP, Database
from .harness import build_app


class _MarkRunsAhead:
    """The exchange port of a pass whose put-back meets a mark that crossed the bot's level
    after the pass read the venue (the mark moves as the command leaves)."""

    def __init__(self, venue: FakeVenue, symbol: str, mark: str) -> None:
        self._venue, self._symbol, self._mark = venue, symbol, mark
        self._inner = venue.exchange

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create_stop_order(self, *args: Any, **kwargs: Any) -> Any:
        await self._venue.set_mark(self._symbol, self._mark)
        return await self._inner.create_stop_order(*args, **kwargs)


async def test_a_put_back_refused_as_triggering_closes_the_position_in_the_same_pass(
    database: Database,
) -> None:
    # Simulator beyond the CI seeds (binance seed 1519, loosened): a person loosened the
    # trailed stop; the guard's put-back at the bot's level was refused (-2021, the mark had
    # crossed it) and the position kept the person's looser stop until the next pass.
    venue = FakeVenue.binance(latency=ROUND_TRIP)
    first = build_app(venue, database.store)
    opened = await first.open("BTCUSDT", Side.LONG, "0.004")
    assert opened.position is not None
    moved = await first.run(
        first.keeper.apply(
            opened.position, Decimal("49500"), owner=StopOwner.TRAILING, reason="trail"
        )
    )
    assert moved.ok
    venue.move_stop("BTCUSDT", "49000")  # a person loosens it
    racing = cast(Exchange, _MarkRunsAhead(venue, "BTCUSDT", "49400"))
    guard = build_app(venue, database.store, exchange=racing)

    await guard.run(guard.guard.check())

    assert venue.position("BTCUSDT") is None  # closed at market, not left at 49,000
    assert venue.stops("BTCUSDT") == []
