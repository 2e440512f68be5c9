"""An open whose stop the venue refuses to the end, on a symbol where a full stop-loss
already stands (the simulator beyond the CI seeds, binance seed 297): the bot's stop of an
earlier position, which the venue kept when a person closed it by hand and the bot could
not cancel (the key lacked the permission for a while). The open rolled back — closed at
market a position that stop protected. A standing stop at least as tight as the one the
open wanted is adopted instead (method "adopted"); a looser one is not the risk the
operator configured, and the open rolls back as before."""

from decimal import Decimal

import pytest

from tradecore.domain.events import EventType
from tradecore.domain.model import Side
from tradecore.domain.positions import PositionState
from tradecore.testing import FakeVenue, Fault, Op, RejectReason

from .conftest import ROUND_TRIP
from .outside import running


def _leaving_reduce_only_stops() -> FakeVenue:
    """A Binance account whose venue keeps a reduce-only stop when its position is closed."""
    return FakeVenue.binance(
        marks={"BTCUSDT": "50000"}, latency=ROUND_TRIP, cancel_reduce_only_when_flat=False
    )


@pytest.mark.parametrize(
    ("reopen_at", "kept"),
    [
        pytest.param("49000", True, id="tighter-than-wanted"),  # wants 47530: 48500 is tighter
        pytest.param("51000", False, id="looser-than-wanted"),  # wants 49470: 48500 is looser
    ],
)
async def test_an_open_whose_stop_is_refused_keeps_a_full_stop_that_already_stands(
    reopen_at: str, kept: bool
) -> None:
    venue = _leaving_reduce_only_stops()
    async with running(venue) as app:
        assert (await app.open("BTCUSDT", Side.LONG, "0.01")).opened  # its stop at 48500
        venue.inject(Fault.reject(RejectReason.AUTHENTICATION, Op.CANCEL, times=50))
        venue.close_by_hand("BTCUSDT")
        await app.sync_pass()  # journaled closed; its stop could not be cancelled
        [left] = venue.stops("BTCUSDT")
        assert left.trigger_price == Decimal("48500")
        venue.engine.faults.clear()

        await venue.set_mark("BTCUSDT", reopen_at)
        venue.inject(Fault.rate_limit(Op.STOP_ORDER, times=50))  # every stop the open sends
        result = await app.open("BTCUSDT", Side.LONG, "0.01")
        venue.engine.faults.clear()

        held = venue.position("BTCUSDT")
        rollbacks = app.events.of(EventType.POSITION_ROLLBACK)
        if not kept:
            assert held is None and len(rollbacks) == 1
            return
        assert held is not None and held.quantity == Decimal("0.01"), "closed at market"
        assert not rollbacks
        assert result.position is not None
        position = await app.store.positions.get(result.position.id)
        assert position is not None and position.state is PositionState.ACTIVE
        assert (position.stop_price, position.stop_order_id) == (Decimal("48500"), left.order_id)
        adopted = [
            e.data for e in app.events.of(EventType.STOP_LOSS_PLACED) if e.data.get("method")
        ]
        assert adopted and adopted[-1]["method"] == "adopted", adopted
        await app.guard_pass()  # and the guard agrees: one stop, nothing to fix
        assert [s.order_id for s in venue.stops("BTCUSDT")] == [left.order_id]
