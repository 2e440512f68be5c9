"""A mapping that keeps only its most recently used entries, for what an adapter remembers
of the venue only to save a request: a process that runs for weeks must not grow by every
order it ever saw, and an entry it forgot is asked of the venue again."""

from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(MutableMapping[K, V]):
    """At most `limit` entries: writing or reading one makes it the newest, and a write
    beyond the limit forgets the oldest."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a memory of at least one entry is needed, got {limit}")
        self._limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        value = self._items[key]
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
