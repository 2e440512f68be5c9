"""A closed position's exit price, fees, funding and realized PnL, from the venue's own fills."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.adapters.paper.engine import DEFAULT_FUNDING_RATE
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.pnl import Fill
from tradecore.domain.positions import Position, PositionState
from tradecore.testing import FakeVenue, Fault, Op

from .harness import App, build_app

QTY = Decimal("0.004")
BEHIND = timedelta(seconds=2)


async def opened(app: App, symbol: str = "BTCUSDT") -> Position:
    result = await app.open(symbol, Side.LONG, str(QTY))
    assert result.opened and result.position is not None
    return result.position


def venue_fees(app: App, symbol: str) -> Decimal:
    return sum((f.fee for f in app.venue.engine.books.fills if f.symbol == symbol), Decimal(0))


async def test_a_position_closed_by_hand_gets_the_venues_exit_price_fees_and_pnl(app: App) -> None:
    position = await opened(app)
    entry = position.entry_price
    assert entry is not None
    await app.venue.set_mark("BTCUSDT", "51000")
    app.venue.manual_close("BTCUSDT")

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert stored.exit_price == Decimal("51000")
    assert stored.fees == venue_fees(app, "BTCUSDT") and stored.fees > 0
    assert stored.funding == 0
    assert stored.realized_pnl == (Decimal("51000") - entry) * QTY - stored.fees
    [recorded] = app.sink.of(EventType.POSITION_PNL_RECORDED)
    assert recorded.position_id == position.id
    assert Decimal(str(recorded.data["realized_pnl"])) == stored.realized_pnl


async def test_a_stopped_out_position_pays_the_funding_it_held_over(app: App) -> None:
    position = await opened(app)
    stop = position.stop_price
    assert stop is not None
    await app.clock.advance(timedelta(hours=8).total_seconds())
    await app.venue.set_mark("BTCUSDT", str(stop - 100))  # the stop fills

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert stored.funding is not None and stored.funding < 0  # a long pays a positive rate
    assert stored.funding == -QTY * Decimal(50000) * DEFAULT_FUNDING_RATE
    assert stored.realized_pnl is not None and stored.fees is not None
    assert stored.exit_price is not None
    move = (stored.exit_price - (position.entry_price or 0)) * QTY
    assert stored.realized_pnl == move - stored.fees + stored.funding


async def test_a_close_whose_fills_cannot_be_read_is_settled_by_the_next_pass(app: App) -> None:
    position = await opened(app)
    # refused whenever the pass reads them: whether one of its orders traded (the look the
    # synchronizer makes when the venue lists none of them filled; refused, it has no fills
    # to hand on), at the close, and again at the end of the same pass
    app.venue.inject(Fault.rate_limit(Op.FETCH_FILLS, times=3))
    app.venue.manual_close("BTCUSDT")

    await app.run(app.sync.sync())
    unsettled = await app.store.positions.get(position.id)
    assert unsettled is not None and unsettled.state is PositionState.CLOSED
    assert unsettled.realized_pnl is None
    assert [p.id for p in await app.store.positions.unsettled()] == [position.id]

    report = await app.run(app.sync.sync())

    assert report.settled == 1
    settled = await app.store.positions.get(position.id)
    assert settled is not None and settled.realized_pnl is not None
    assert settled.fees == venue_fees(app, "BTCUSDT")
    assert await app.store.positions.unsettled() == []
    assert len(app.sink.of(EventType.POSITION_PNL_RECORDED)) == 1


class _Port:
    """The venue's port, passed through but for what a subclass answers itself."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountedFills(_Port):
    """The venue's port, counting its reads of the account's trade history."""

    reads = 0

    async def fetch_fills(self, symbol: str, **kwargs: Any) -> list[Fill]:
        self.reads += 1
        return list(await self._inner.fetch_fills(symbol, **kwargs))


async def test_a_close_by_hand_is_explained_and_settled_from_one_read_of_the_fills(
    venue: FakeVenue, database: Any
) -> None:
    """The pass asks the fills whether one of the bot's orders closed it, and the same read
    gives the close its figures: one request of the venue's rate budget, not two."""
    counted = _CountedFills(venue.exchange)
    app = build_app(venue, database.store, exchange=counted)
    position = await opened(app)
    app.venue.manual_close("BTCUSDT")
    before = counted.reads

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert stored.fees == venue_fees(app, "BTCUSDT")
    assert counted.reads - before == 1


class _ClockBehind(_Port):
    """The venue's port, its trade history stamped on a clock two seconds behind ours."""

    async def fetch_fills(self, symbol: str, **kwargs: Any) -> list[Fill]:
        kwargs["since"] = kwargs["since"] + BEHIND  # asked on its clock, answered on its own
        fills = await self._inner.fetch_fills(symbol, **kwargs)
        return [attrs.evolve(f, at=f.at - BEHIND) for f in fills]


async def test_fills_stamped_by_a_venue_clock_behind_ours_still_settle_the_position(
    venue: FakeVenue, database: Any
) -> None:
    app = build_app(venue, database.store, exchange=_ClockBehind(venue.exchange))
    position = await opened(app)
    app.venue.manual_close("BTCUSDT")

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position.id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert stored.realized_pnl is not None and stored.fees == venue_fees(app, "BTCUSDT")
