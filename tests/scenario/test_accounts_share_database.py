"""Two accounts, one database: what an operator growing past one account tries first.

Without a guard the second account's synchronizer reads the first's open positions as its
own, finds them missing on its venue and closes them in the journal; its waves would find
the first's claims and skip as duplicates. A database journals one account: the first to
take the database's lock binds it, any other is refused before it reads anything.
"""

import attrs
import pytest

from tradecore.app.kernel import Kernel
from tradecore.domain.model import Side
from tradecore.ports.lock import AccountMismatch
from tradecore.testing import FakeVenue

from .conftest import ROUND_TRIP, Database
from .harness import build_app


async def test_a_second_account_is_refused_by_a_database_that_journals_another(
    database: Database,
) -> None:
    first = build_app(FakeVenue.binance(latency=ROUND_TRIP), database.store)
    first_kernel = Kernel(
        attrs.evolve(first.parts, lock=database.instance_lock(), account="binance:live:aaaa")
    )
    await first.run(first_kernel.start(loops=False))
    assert (await first.open("BTCUSDT", Side.LONG, "0.004")).opened

    second = build_app(FakeVenue.binance(latency=ROUND_TRIP), database.store)
    second_kernel = Kernel(
        attrs.evolve(second.parts, lock=database.instance_lock(), account="binance:live:bbbb")
    )
    with pytest.raises(AccountMismatch) as refused:
        await second.run(second_kernel.start(loops=False))
    message = str(refused.value)
    assert "binance:live:aaaa" in message and "binance:live:bbbb" in message
    assert "own database" in message

    open_in_journal = await database.store.positions.open_positions()
    assert [p.symbol for p in open_in_journal] == ["BTCUSDT"]  # nothing of the first touched
    await first.run(first_kernel.stop("test over"))

    again = Kernel(
        attrs.evolve(first.parts, lock=database.instance_lock(), account="binance:live:aaaa")
    )
    await first.run(again.start(loops=False))  # the same account comes back to its database
    await first.run(again.stop("test over"))
