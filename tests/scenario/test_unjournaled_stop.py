"""A stop standing that the journal never recorded becomes the bot's level.

Found by the simulator (bybit seed 87): the process died right after the venue took a
position's stop and before the journal recorded it (a position stop on Bybit has no client
id to find it by). After the restart every guard pass saw a stop and left it alone, with no
level in the journal; a person then moved it looser by hand and it was never put back. The
rule (issue 10): the venue's stop never loosens against the last stop the bot set. The
guard now records a stop it finds standing for a position without a level as that level.
"""

from decimal import Decimal

import pytest

from tradecore.domain.model import Side
from tradecore.testing import FakeVenue, TradingApp


def venues() -> list[FakeVenue]:
    return [
        FakeVenue.binance(marks={"BTCUSDT": "50000"}, latency=0.05),
        FakeVenue.bybit(marks={"BTCUSDT": "50000"}, latency=0.05),
    ]


@pytest.mark.parametrize("venue", venues(), ids=["binance", "bybit"])
async def test_a_stop_the_journal_lost_is_put_back_after_a_person_loosens_it(
    venue: FakeVenue,
) -> None:
    app = await TradingApp.on_sqlite(venue)
    await app.start()
    opened = await app.open("BTCUSDT", Side.LONG, "0.01")
    assert opened.opened and opened.position is not None
    position = await app.store.positions.get(opened.position.id)
    assert position is not None and position.stop_price == Decimal("48500")
    # the journal never got to record the stop (the process died right after the venue took it)
    await app.store.positions.save(position.with_stop(price=None, order_id=None, owner=None))

    await app.guard_pass()  # the stop stands: the bot's level is what it sees
    venue.move_stop("BTCUSDT", Decimal("47000"))  # a person loosens it by hand
    await app.guard_pass()

    assert [s.trigger_price for s in venue.stops("BTCUSDT")] == [Decimal("48500")]
    await app.close()
