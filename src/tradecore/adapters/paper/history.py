"""The simulated venue's mark-price history, kept as the venues keep it: one-minute candles.

Binance (`GET /fapi/v1/markPriceKlines`) and Bybit (`GET /v5/market/mark-price-kline`) answer
a symbol's mark prices as klines: per interval the open, high, low and close, the interval in
progress closing at the mark now, every interval present whether the mark moved or not. The
engine records each mark in its minute's candle (a tick compares two Decimals and allocates
nothing unless a new minute begins) and answers any interval of whole minutes from them.

A live venue keeps years; this keeps `RETAINED_MINUTES` per symbol (a day), enough for a
restart of a process whose venue outlived it (the simulator, a standalone paper exchange).
"""

from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecore.domain.orders import MarkCandle

RETAINED_MINUTES = 1440
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)


def minute_of(at: datetime) -> int:
    """Whole minutes since the epoch: the one-minute candle `at` falls in."""
    return (at - _EPOCH) // _MINUTE


class _Candle:
    """One minute's marks (mutable: the minute in progress takes each tick)."""

    __slots__ = ("close", "high", "low", "minute", "open")

    def __init__(self, minute: int, mark: Decimal) -> None:
        self.minute = minute
        self.open = self.high = self.low = self.close = mark


class MarkHistory:
    """Each symbol's one-minute mark candles, the newest last."""

    def __init__(self, retained: int = RETAINED_MINUTES) -> None:
        self._retained = retained
        self._candles: dict[str, deque[_Candle]] = {}

    def record(self, symbol: str, mark: Decimal, at: datetime) -> None:
        candles = self._candles.get(symbol)
        if candles is None:
            candles = self._candles[symbol] = deque(maxlen=self._retained)
        minute = minute_of(at)
        if candles and (last := candles[-1]).minute == minute:
            if mark > last.high:
                last.high = mark
            elif mark < last.low:
                last.low = mark
            last.close = mark
        else:
            candles.append(_Candle(minute, mark))

    def candles(
        self, symbol: str, start: datetime, end: datetime, minutes: int = 1
    ) -> list[MarkCandle]:
        """The candles of `minutes` each from the one `start` falls in to the one `end` falls
        in, oldest first; a stretch without a mark repeats the mark that stood (as a venue's
        klines do); before the first mark kept, none."""
        kept = self._candles.get(symbol)
        if not kept:
            return []
        first, last = minute_of(start) // minutes, minute_of(end) // minutes
        found: dict[int, list[Decimal]] = {}
        standing = prior = None  # the mark that stood: at each candle, and before `start`
        for candle in kept:
            bucket = candle.minute // minutes
            if bucket < first:
                standing = prior = candle.close
                continue
            if bucket > last:
                break
            have = found.get(bucket)
            if have is None:
                have = found[bucket] = [candle.open, candle.high, candle.low, candle.close]
                if standing is not None and candle.minute > bucket * minutes:
                    have[0] = standing  # the mark stood from the interval's start
            else:
                have[3] = candle.close
            if standing is not None and candle.minute > bucket * minutes:
                have[1], have[2] = max(have[1], standing), min(have[2], standing)
            have[1], have[2] = max(have[1], candle.high), min(have[2], candle.low)
            standing = candle.close
        answer: list[MarkCandle] = []
        standing = prior
        for bucket in range(first, last + 1):
            have = found.get(bucket)
            if have is None:
                if standing is None:
                    continue
                have = [standing] * 4
            standing = have[3]
            opened = _EPOCH + bucket * minutes * _MINUTE
            answer.append(
                MarkCandle(
                    opened_at=opened,
                    closes_at=opened + minutes * _MINUTE,
                    open=have[0],
                    high=have[1],
                    low=have[2],
                    close=have[3],
                )
            )
        return answer
