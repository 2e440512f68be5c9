"""A venue that amends stops in place and has no position-attached stop (`amend_stop` on,
`position_stop` off; Bybit's profile with its trading-stop endpoint switched off). A person
cancelled the bot's trailed stop; the next trailing move's amend is answered "order not
found" and its create is refused, and the process dies before it tries again. The journal
keeps the last level the bot set, so the restart puts the stop back there, never at the
initial distance (issue 10, story 3's rule)."""

from decimal import Decimal

import attrs

from tradecore.adapters.paper import BYBIT
from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.orders import MarkTick
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP
from .outside import running


def amending_venue() -> FakeVenue:
    capabilities = attrs.evolve(BYBIT.capabilities, position_stop=False, entry_stop=False)
    profile = attrs.evolve(BYBIT, capabilities=capabilities)
    return FakeVenue(profile, marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP)


async def test_a_move_that_finds_its_stop_gone_and_is_refused_keeps_the_trailed_level() -> None:
    venue = amending_venue()
    async with running(venue) as app:
        await app.open("BTCUSDT", Side.LONG, "0.01")
        [position] = await app.store.positions.open_positions()
        await app.services.trailing.start(position)

        async def mark(price: str, *, then: float = 20) -> None:
            await venue.set_mark("BTCUSDT", price)
            tick = MarkTick(
                venue=venue.exchange.venue, symbol="BTCUSDT", mark=Decimal(price), at=venue.now()
            )
            await app.services.trailing.on_tick(tick)
            await app.pass_time(then)

        await mark("50900")  # activation: the stop is trailed
        [trailed] = venue.stops("BTCUSDT")
        assert trailed.trigger_price is not None and trailed.trigger_price > Decimal("48500")
        assert app.events.of(EventType.STOP_LOSS_REPLACED)[-1].data["method"] == "amend"

        venue.cancel_stop("BTCUSDT")  # a person
        venue.inject(Fault.reject(RejectReason.SYMBOL_UNAVAILABLE, Op.STOP_ORDER))
        await mark("51500", then=1)  # amend: order not found; the create: refused
        assert app.events.of(EventType.STOP_LOSS_FAILED)
        await app.crash()  # before the trailing stop tries again
        [journaled] = await app.store.positions.open_positions()
        assert journaled.stop_price == trailed.trigger_price  # the bot's level, no order

        await app.restart()
        await app.guard_pass()
        [stop] = venue.stops("BTCUSDT")
        assert stop.trigger_price is not None
        assert stop.trigger_price >= trailed.trigger_price, (stop.trigger_price, trailed)
