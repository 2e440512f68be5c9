"""Asking a venue for a span of mark-price candles: which interval, and which requests.

Both venues answer a page of klines per request (Binance `GET /fapi/v1/markPriceKlines`:
"limit ... Default 500; max 1500"; Bybit `GET /v5/market/mark-price-kline`: "limit ...
[`1`, `200`]"). A restart asks for the span since a trailing state's last change: one-minute
candles while that is at most `PAGES` requests, the next interval both venues offer when
longer (a bot down for days asks a handful of requests per position, not hundreds).
"""

from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from tradecore.adapters.ccxt import parse
from tradecore.domain.orders import MarkCandle

PAGES = 3
# minutes; both venues offer each (Binance 1m 5m 15m 1h 4h 1d, Bybit 1 5 15 60 240 D)
INTERVALS = (1, 5, 15, 60, 240, 1440)
_MINUTE_MS = 60_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_for(since: datetime, now: datetime, page: int) -> int:
    """The shortest interval (minutes) whose candles from `since` to `now` fit in `PAGES`
    pages of `page` candles (the longest when none does)."""
    span = max(now - since, timedelta(0))
    for minutes in INTERVALS:
        if span // timedelta(minutes=minutes) + 2 <= page * PAGES:
            return minutes
    return INTERVALS[-1]


def pages(since: datetime, now: datetime, minutes: int, page: int) -> Iterator[tuple[int, int]]:
    """(start, end) in ms of each request: from the candle `since` falls in to the one in
    progress, `page` candles each (both ends inclusive, as the venues read them)."""
    step = minutes * _MINUTE_MS
    start = _ms(since) // step * step
    last = _ms(now) // step * step
    while start <= last:
        end = min(start + page * step, last + step) - 1
        yield start, end
        start = end + 1


async def gather(
    since: datetime,
    now: datetime,
    page: int,
    ask: Callable[[int, int, int], Awaitable[Sequence[MarkCandle]]],
) -> list[MarkCandle]:
    """The candles from `since` to `now`, oldest first, once each: `ask(minutes, start,
    end)` is one venue request of at most `page` candles (`interval_for`, `pages`)."""
    minutes = interval_for(since, now, page)
    found: dict[datetime, MarkCandle] = {}
    for start, end in pages(since, now, minutes, page):
        found.update((c.opened_at, c) for c in await ask(minutes, start, end))
    return [found[opened] for opened in sorted(found)]


def candle(row: Sequence[object], minutes: int) -> MarkCandle:
    """A kline row `[open time, open, high, low, close, …]` (both venues' order)."""
    opened = _EPOCH + timedelta(milliseconds=int(str(row[0])))
    return MarkCandle(
        opened_at=opened,
        closes_at=opened + timedelta(minutes=minutes),
        open=parse.dec(row[1], name="open"),
        high=parse.dec(row[2], name="high"),
        low=parse.dec(row[3], name="low"),
        close=parse.dec(row[4], name="close"),
    )


def _ms(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(milliseconds=1)
