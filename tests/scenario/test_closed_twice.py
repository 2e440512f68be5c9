"""Two use cases noticing the same close at once record it once, without an error.

The synchronizer (a phantom) and the aged manager (its close at the cap) both end in
`PositionCloser.closed_on_venue`. Run at once, both read the position ACTIVE, both remove
its stop through the keeper, and both save it CLOSED from their own read: the second save
carried a stale version and raised `StaleVersion` out of its pass (in the kernel: a
CRITICAL "... failed" no fault explains).
"""

import asyncio

from tradecore.domain.events import EventType
from tradecore.domain.positions import PositionState

from .harness import App
from .test_stop_ownership import opened


async def test_a_close_noticed_twice_at_once_is_recorded_once(app: App) -> None:
    position_id = await opened(app, "BTCUSDT", "0.004")
    position = await app.store.positions.get(position_id)
    assert position is not None
    app.venue.manual_close("BTCUSDT")

    results = await app.run(
        asyncio.gather(
            app.services.closer.closed_on_venue(position, "gone from the venue"),
            app.services.closer.closed_on_venue(position, "closed at the cap"),
        )
    )

    assert sum(result is not None for result in results) == 1
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert len(app.sink.of(EventType.POSITION_CLOSED)) == 1
