"""The mark feed: a silent or broken stream falls back to REST polls; drops are reported."""

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal

from tradecore.adapters.ccxt.streams import MarkFeed
from tradecore.adapters.clock import VirtualClock, settle
from tradecore.domain.model import Venue

SYMBOL = "BTCUSDT"


class FakeStream:
    """A websocket that speaks when told, stays silent otherwise, or fails once."""

    def __init__(self) -> None:
        self.pending: asyncio.Queue[Decimal | Exception] = asyncio.Queue()
        self.subscriptions = 0

    async def watch(self, symbols: Sequence[str]) -> Mapping[str, Decimal]:
        self.subscriptions += 1
        item = await self.pending.get()
        if isinstance(item, Exception):
            raise item
        return {SYMBOL: item}


class FakeRest:
    def __init__(self, mark: str) -> None:
        self.mark = Decimal(mark)
        self.calls = 0

    async def poll(self, symbols: Sequence[str]) -> Mapping[str, Decimal]:
        self.calls += 1
        return {SYMBOL: self.mark}


def feed(
    clock: VirtualClock, rest: FakeRest, stream: FakeStream | None, statuses: list
) -> MarkFeed:
    made = MarkFeed(
        Venue.BYBIT,
        [SYMBOL],
        clock=clock,
        poll=rest.poll,
        watch=None if stream is None else stream.watch,
        on_status=lambda connected, detail: statuses.append(connected),
        poll_interval=1.0,
        silence_limit=60.0,
    )
    made.start()
    return made


async def test_stream_ticks_are_delivered_and_rest_is_not_polled_while_it_speaks() -> None:
    clock, rest, stream, statuses = VirtualClock(), FakeRest("50000"), FakeStream(), []
    marks = feed(clock, rest, stream, statuses)
    await settle()
    for price in ("50100", "50200"):
        stream.pending.put_nowait(Decimal(price))
        await settle()
        await clock.advance(10)
    opening, first, second = await anext(marks), await anext(marks), await anext(marks)
    # the current mark first (the first read), then each change
    assert (opening.mark, first.mark, second.mark) == (
        Decimal("50000"),
        Decimal("50100"),
        Decimal("50200"),
    )
    assert rest.calls == 1  # only the first read
    assert statuses == [True]
    await marks.aclose()


async def test_after_sixty_seconds_of_silence_rest_is_polled_every_second() -> None:
    clock, rest, stream, statuses = VirtualClock(), FakeRest("50000"), FakeStream(), []
    marks = feed(clock, rest, stream, statuses)
    await settle()
    await clock.advance(59)
    assert rest.calls == 1
    rest.mark = Decimal("49000")
    await clock.advance(2)
    assert rest.calls >= 2
    assert (await asyncio.wait_for(anext(marks), 1)).mark == Decimal("50000")  # the opening
    tick = await asyncio.wait_for(anext(marks), 1)
    assert tick.mark == Decimal("49000")
    before = rest.calls
    await clock.advance(5)
    assert rest.calls - before == 5
    await marks.aclose()


async def test_a_dropped_stream_is_reported_resubscribed_and_its_recovery_reported() -> None:
    clock, rest, stream, statuses = VirtualClock(), FakeRest("50000"), FakeStream(), []
    marks = feed(clock, rest, stream, statuses)
    await settle()
    stream.pending.put_nowait(ConnectionResetError("connection reset by peer"))
    await settle()
    assert statuses == [False]
    await clock.advance(1)  # the reconnect backoff
    await settle()
    assert stream.subscriptions == 2
    stream.pending.put_nowait(Decimal("50500"))
    await settle()
    assert statuses == [False, True]
    assert (await asyncio.wait_for(anext(marks), 1)).mark == Decimal("50000")  # the opening
    assert (await asyncio.wait_for(anext(marks), 1)).mark == Decimal("50500")
    await marks.aclose()


async def test_without_a_stream_the_first_poll_then_only_changes_become_ticks() -> None:
    clock, rest, statuses = VirtualClock(), FakeRest("50000"), []
    marks = feed(clock, rest, None, statuses)
    await settle()
    await clock.advance(3)  # three more polls of the same mark: no tick
    rest.mark = Decimal("50001")
    await clock.advance(1)
    assert (await asyncio.wait_for(anext(marks), 1)).mark == Decimal("50000")
    assert (await asyncio.wait_for(anext(marks), 1)).mark == Decimal("50001")
    assert marks.last(SYMBOL) == Decimal("50001")
    await marks.aclose()
