"""The synchronizer's quantity correction and a stop move write the same journal row.

Found by `test_attack_schedule` (crashes, binance): the synchronizer corrected a position's
quantity (a partial close by hand) from a snapshot read before a trailing move saved the
position's new stop; its save then carried a stale version and the pass died with
`StaleVersion` (in the kernel: a CRITICAL "sync failed" no fault explains). The other way
round, the move's save fails after its new stop stood and the old one was cancelled. One
writer per position row: the correction is made by the keeper, under the symbol's lock, on
a fresh read.
"""

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, cast

from tradecore.domain.model import OrderSide
from tradecore.domain.positions import StopOwner
from tradecore.ports.repositories import Store
from tradecore.testing import Accepted, FakeVenue

from .conftest import ROUND_TRIP, Database
from .harness import build_app
from .test_stop_ownership import opened


class _MovesAfterTheJournalRead:
    """A store whose operations' second `in_flight` read, once armed, lets `meanwhile` run
    to its end first: the snapshot's second journal read has read the positions, and a stop
    move saves the position before the operations are read."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.meanwhile: Callable[[], Awaitable[object]] | None = None
        self.skip = 0
        outer = self

        class Operations:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner.operations, name)

            async def in_flight(self) -> Any:
                if outer.meanwhile is not None:
                    if outer.skip == 0:
                        meanwhile, outer.meanwhile = outer.meanwhile, None
                        await meanwhile()
                    else:
                        outer.skip -= 1
                return await inner.operations.in_flight()

        self.operations = Operations()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_quantity_correction_and_a_stop_move_at_once_both_stand(
    database: Database,
) -> None:
    venue = FakeVenue.binance(latency=ROUND_TRIP)
    store = _MovesAfterTheJournalRead(database.store)
    app = build_app(venue, cast(Store, store))
    position_id = await opened(app, "BTCUSDT", "0.004")
    position = await app.store.positions.get(position_id)
    assert position is not None
    assert isinstance(
        venue.manual_order("BTCUSDT", OrderSide.SELL, "0.002", reduce_only=True), Accepted
    )
    # Between the synchronizer's last journal read and its correction, a stop move's
    # journal write lands (a store call cannot wait on the virtual clock here, so the
    # move's last step is written directly, as `StopWriter._stored_stop` writes it).
    moved = position.with_stop(
        price=Decimal("49000"), order_id="moved-stop", owner=StopOwner.TRAILING
    )
    store.skip = 1
    store.meanwhile = lambda: database.store.positions.save(moved)

    report = await app.run(app.sync.sync())

    assert report.corrected == 1
    stored = await app.store.positions.get(position_id)
    assert stored is not None
    assert stored.quantity == Decimal("0.002")  # the venue's quantity
    assert stored.stop_price == Decimal("49000")  # and the move it raced
    assert stored.stop_order_id == "moved-stop"
