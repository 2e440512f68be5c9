"""A store whose repositories (and transactions) go through an `around(call)` hook (crash and
outage tests). Unlike `virtual_time.CountedStore`, a transaction's begin and commit are not
hooked: a test process that "dies" there could not release the database's lock the way a
dead process does."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tradecore.adapters.virtual_time import REPOSITORIES, Around, AroundPort


class StoreProxy:
    def __init__(self, store: Any, around: Around) -> None:
        self._store = store
        self._around = around
        for name in REPOSITORIES:
            setattr(self, name, AroundPort(getattr(store, name), around))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["StoreProxy"]:
        async with self._store.transaction() as tx:
            yield StoreProxy(tx, self._around)
