"""Protection guard, synchronizer and zombie sweeper against outside changes on the venue."""

from datetime import timedelta
from decimal import Decimal

from tradecore.domain.events import EventType
from tradecore.domain.model import OrderSide, Side
from tradecore.domain.orders import MarkTick, OrderType
from tradecore.domain.positions import Operation, OperationKind, PositionState, StopOwner
from tradecore.testing import Accepted, Fault, FaultKind, Op

from .harness import App


async def opened(app: App, symbol: str = "BTCUSDT", quantity: str = "0.004") -> str:
    result = await app.open(symbol, Side.LONG, quantity)
    assert result.opened and result.position is not None
    return result.position.id


async def remove_stops_by_hand(app: App, symbol: str) -> None:
    exchange = app.venue.exchange
    for stop in app.venue.stops(symbol):
        if stop.type is OrderType.POSITION_STOP:
            assert isinstance(await app.run(exchange.set_position_stop(symbol, None)), Accepted)
        else:
            assert isinstance(await app.run(exchange.cancel_order(symbol, stop.order_id)), Accepted)


async def test_the_guard_puts_back_a_stop_someone_removed(app: App) -> None:
    app.gaps_allowed = 1  # from the removal by hand until the guard's pass
    position_id = await opened(app)
    await remove_stops_by_hand(app, "BTCUSDT")
    assert app.venue.stops("BTCUSDT") == []

    report = await app.run(app.guard.check())

    assert report.unprotected == 1 and report.fixed == 1
    [stop] = app.venue.stops("BTCUSDT")
    assert stop.trigger_price == Decimal("48500.0")
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.stop_owner is StopOwner.PROTECTION
    assert app.sink.of(EventType.UNPROTECTED_POSITION_FOUND)


async def test_a_second_stop_placed_by_hand_is_cancelled_and_ours_kept(app: App) -> None:
    await opened(app)
    [ours] = app.venue.stops("BTCUSDT")
    assert isinstance(app.venue.manual_stop("BTCUSDT", OrderSide.SELL, "0.004", "47000"), Accepted)
    assert len(app.venue.stops("BTCUSDT")) == 2

    await app.run(app.guard.check())

    [kept] = app.venue.stops("BTCUSDT")
    assert kept.order_id == ours.order_id


async def test_a_healthy_trailing_stop_is_left_alone_and_a_silent_one_taken_over(app: App) -> None:
    position_id = await opened(app)
    position = await app.store.positions.get(position_id)
    assert position is not None
    await app.trailing.start(position)
    await app.keeper.take_over(position, StopOwner.TRAILING)
    await app.venue.set_mark("BTCUSDT", "50100")
    await app.trailing.on_tick(_tick(app, "BTCUSDT", "50100"))

    await app.run(app.guard.check())
    assert not app.sink.of(EventType.PROTECTION_TOOK_OVER)

    await app.clock.advance(timedelta(minutes=6).total_seconds())  # the stream went silent
    await app.run(app.guard.check())

    assert app.sink.of(EventType.PROTECTION_TOOK_OVER)
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.stop_owner is StopOwner.PROTECTION
    assert len(app.venue.stops("BTCUSDT")) == 1


async def test_a_position_closed_by_hand_is_closed_in_the_journal(app: App) -> None:
    position_id = await opened(app)
    app.venue.manual_close("BTCUSDT")

    report = await app.run(app.sync.sync())

    assert report.closed == 1
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert app.sink.of(EventType.PHANTOM_POSITION_CLOSED)


async def test_a_position_opened_by_hand_is_adopted_and_protected(app: App) -> None:
    app.gaps_allowed = 1  # opened by hand without a stop, until the synchronizer adopts it
    assert isinstance(app.venue.manual_order("ETHUSDT", OrderSide.SELL, "0.5"), Accepted)

    report = await app.run(app.sync.sync())

    assert report.adopted == 1
    adopted = await app.store.positions.open_for(app.venue.exchange.venue, "ETHUSDT")
    assert adopted is not None and adopted.adopted and adopted.side is Side.SHORT
    [stop] = app.venue.stops("ETHUSDT")
    assert stop.trigger_price is not None and stop.trigger_price > Decimal("3000")
    assert app.sink.of(EventType.MISSING_POSITION_ADDED)


async def test_a_liquidated_position_is_closed_and_its_trailing_stop_ends(app: App) -> None:
    position_id = await opened(app)
    position = await app.store.positions.get(position_id)
    assert position is not None
    await app.trailing.start(position)
    assert app.venue.liquidate("BTCUSDT")

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert app.trailing.state(position_id) is None
    assert app.sink.of(EventType.TRAILING_STOP_REMOVED)


async def test_a_stop_that_filled_closes_the_position_without_calling_it_a_phantom(
    app: App,
) -> None:
    position_id = await opened(app)
    await app.venue.set_mark("BTCUSDT", "48000")  # through the 48500 stop
    assert app.venue.position("BTCUSDT") is None

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert not app.sink.of(EventType.PHANTOM_POSITION_CLOSED)
    [closed] = app.sink.of(EventType.POSITION_CLOSED)
    assert "filled" in str(closed.data["reason"])


async def test_zombie_orders_are_cancelled_but_an_entry_in_flight_is_left_alone(app: App) -> None:
    venue = app.venue
    assert isinstance(venue.manual_stop("SOLUSDT", OrderSide.SELL, "1", "100"), Accepted)
    in_flight_cid = "tc-flying1-e0"
    await app.store.operations.start(
        Operation(
            id="flying1",
            kind=OperationKind.OPEN,
            venue=venue.exchange.venue,
            symbol="ETHUSDT",
            position_id=None,
            started_at=app.clock.now(),
            client_order_ids=(in_flight_cid,),
        )
    )
    entry = await app.run(
        venue.exchange.create_limit_order(
            "ETHUSDT",
            OrderSide.BUY,
            Decimal("0.1"),
            Decimal("2000"),
            client_order_id=in_flight_cid,
            reduce_only=False,
        )
    )
    assert isinstance(entry, Accepted)

    report = await app.run(app.zombies.sweep())

    assert report.found == 1 and report.cancelled == 1
    assert venue.stops("SOLUSDT") == []
    assert [o.client_order_id for o in venue.engine.open_orders("ETHUSDT")] == [in_flight_cid]
    assert app.zombies.interval_seconds == 60
    await app.run(app.zombies.sweep())
    assert app.zombies.interval_seconds == 120  # nothing found: the sweeps slow down


def _tick(app: App, symbol: str, price: str) -> MarkTick:
    return MarkTick(
        venue=app.venue.exchange.venue, symbol=symbol, mark=Decimal(price), at=app.clock.now()
    )


async def test_a_position_reduced_by_hand_is_corrected_and_its_stop_resized(app: App) -> None:
    position_id = await opened(app, "ETHUSDT", "0.2")
    reduced = app.venue.manual_order("ETHUSDT", OrderSide.SELL, "0.05", reduce_only=True)
    assert isinstance(reduced, Accepted)

    report = await app.run(app.sync.sync())
    await app.run(app.guard.check())

    assert report.corrected == 1
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.quantity == Decimal("0.15")
    [mismatch] = app.sink.of(EventType.QUANTITY_MISMATCH_DETECTED)
    assert (mismatch.data["journal"], mismatch.data["venue"]) == (Decimal("0.2"), Decimal("0.15"))
    [stop] = app.venue.stops("ETHUSDT")
    held = app.venue.position("ETHUSDT")
    assert held is not None
    assert stop.type is OrderType.POSITION_STOP or stop.quantity == held.quantity


async def test_a_venue_that_cannot_be_read_is_reported_and_nothing_is_concluded(
    app: App,
) -> None:
    position_id = await opened(app)
    app.venue.inject(Fault.server_error(Op.FETCH_POSITIONS, times=2))

    guarded = await app.run(app.guard.check())
    synced = await app.run(app.sync.sync())

    assert guarded.skipped and synced.skipped
    assert app.sink.of(EventType.HEALTH_CHECK_FAILED)
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.ACTIVE  # no phantom


async def test_zombies_of_every_kind_a_one_way_venue_allows_are_cancelled(app: App) -> None:
    # (A foreign positionIdx cannot exist on a one-way account: the venue refuses it. The
    # domain's own tests cover that kind.)
    await opened(app, "BTCUSDT", "0.004")
    engine = app.venue.engine
    [ours] = app.venue.stops("BTCUSDT")
    placed = [
        # a stop-loss protecting nothing: SOL is flat
        app.venue.manual_stop("SOLUSDT", OrderSide.SELL, "1", "100"),
        # a plain order resting on a flat symbol
        engine.place_limit(
            "ETHUSDT",
            OrderSide.BUY,
            Decimal("0.1"),
            Decimal("2000"),
            reduce_only=False,
            origin="manual",
        ),
        # an opposite order 2.5x the long: filled, it would flip the position to a short
        engine.place_limit(
            "BTCUSDT",
            OrderSide.SELL,
            Decimal("0.01"),
            Decimal("60000"),
            reduce_only=False,
            origin="manual",
        ),
    ]
    assert all(isinstance(outcome, Accepted) for outcome in placed)

    report = await app.run(app.zombies.sweep())

    assert (report.found, report.cancelled) == (3, 3)
    kinds = {z["kind"] for z in app.sink.of(EventType.ZOMBIE_ORDERS_DETECTED)[0].data["orders"]}
    assert kinds == {"zombie_reduce_only", "zombie_no_position", "zombie_would_flip"}
    assert engine.open_orders("SOLUSDT") == [] and engine.open_orders("ETHUSDT") == []
    assert [o.order_id for o in engine.open_orders("BTCUSDT")] == [ours.order_id]  # ours stays


async def test_a_position_closed_by_hand_is_journaled_phantom_once_when_the_close_is_confirmed(
    app: App,
) -> None:
    """A person closes the bot's position; the keeper cannot confirm it on the first pass.
    `phantom_position_closed` ends the position in the report and the monitor: it is written
    once, by the pass that closed the position, never by one that left it open."""
    position_id = await opened(app)
    app.venue.close_by_hand("BTCUSDT")
    app.venue.inject(Fault(kind=FaultKind.NETWORK_ERROR, op=Op.FETCH_POSITIONS, skip=1))

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.ACTIVE
    assert app.sink.of(EventType.PHANTOM_POSITION_CLOSED) == []

    await app.run(app.sync.sync())

    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    [phantom] = app.sink.of(EventType.PHANTOM_POSITION_CLOSED)
    assert phantom.position_id == position_id


async def test_a_close_the_venue_could_not_confirm_is_not_reported_as_done(app: App) -> None:
    """The pass sees the venue flat, but the keeper's own read under the symbol's lock fails:
    the position stays ACTIVE, and neither the pass's report nor its journaled
    `synchronization_completed` says it closed it; that event names the symbol it left, and
    the next pass closes it."""
    position_id = await opened(app)
    await app.venue.set_mark("BTCUSDT", "48000")  # through the 48500 stop
    assert app.venue.position("BTCUSDT") is None
    # the pass's own read goes through; the keeper's read under the lock finds no venue
    app.venue.inject(Fault(kind=FaultKind.NETWORK_ERROR, op=Op.FETCH_POSITIONS, skip=1))

    first = await app.run(app.sync.sync())

    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.ACTIVE
    assert first.closed == 0
    [completed] = app.sink.of(EventType.SYNCHRONIZATION_COMPLETED)
    assert completed.data["closed"] == 0
    assert completed.data["left"] == ["BTCUSDT"]

    second = await app.run(app.sync.sync())

    assert second.closed == 1
    stored = await app.store.positions.get(position_id)
    assert stored is not None and stored.state is PositionState.CLOSED
    assert app.sink.of(EventType.SYNCHRONIZATION_COMPLETED)[-1].data["left"] == []
