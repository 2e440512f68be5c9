"""The protective buffer between the socket and a consumer that may fall behind."""

from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
from sortedcontainers import SortedKeyList

from tradecore.domain.signals import Signal

DEFAULT_CAPACITY = 100
DEFAULT_REMEMBERED_IDS = 10_000


def protective_rank(signal: Signal) -> tuple[Decimal, Decimal]:
    """Higher is better: the weekly score first, the monthly score breaking ties."""
    return (signal.score_week, signal.score_month)


@attrs.frozen(kw_only=True)
class Offered:
    """What happened to a signal offered to the buffer."""

    accepted: bool  # False: a duplicate of a signal already seen, nothing changed
    evicted: Signal | None = (
        None  # the lowest-ranked signal dropped to make room (may be the new one)
    )


class ProtectiveBuffer:
    """At most `capacity` signals, best first; each signal id is taken once.

    When full, the lowest-ranked signal is dropped, so a slow consumer loses the weakest
    signals rather than the newest or the strongest. Among equal ranks the older signal
    is kept and delivered first. Ids are remembered after delivery (up to `remembered_ids`)
    so a service that replays its backlog after a reconnect does not deliver twice.
    """

    def __init__(
        self,
        *,
        capacity: int = DEFAULT_CAPACITY,
        remembered_ids: int = DEFAULT_REMEMBERED_IDS,
        rank: Callable[[Signal], Any] = protective_rank,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._remembered = max(remembered_ids, capacity)
        self._rank = rank
        self._arrivals = 0
        # Sorted ascending by (rank, -arrival): index -1 is the best and oldest, index 0 the
        # weakest and newest, which is the one to drop.
        self._items: SortedKeyList = SortedKeyList(key=lambda entry: entry[0])
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, signal: Signal) -> Offered:
        if signal.id in self._seen:
            return Offered(accepted=False)
        self._remember(signal.id)
        self._arrivals += 1
        self._items.add(((self._rank(signal), -self._arrivals), signal))
        if len(self._items) <= self._capacity:
            return Offered(accepted=True)
        _, weakest = self._items.pop(0)
        return Offered(accepted=True, evicted=weakest)

    def pop_best(self) -> Signal:
        """The highest-ranked signal; raises IndexError when empty."""
        _, signal = self._items.pop(-1)
        return signal

    def drain(self) -> list[Signal]:
        """Every buffered signal, best first, leaving the buffer empty."""
        signals = [signal for _, signal in reversed(self._items)]
        self._items.clear()
        return signals

    def _remember(self, signal_id: str) -> None:
        self._seen[signal_id] = None
        if len(self._seen) > self._remembered:
            self._seen.popitem(last=False)
