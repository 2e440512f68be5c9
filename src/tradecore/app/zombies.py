"""Zombie sweeper (SPEC §6): orders that protect or belong to nothing are cancelled.

The domain names them (`reconcile.find_zombies`: reduce-only / TP / SL / close-on-trigger
orders with no position, plain orders on a flat symbol, the wrong `positionIdx`, oversized
opposite orders) and never names an order of an operation in flight. Cancels go through the
stop keeper with its retries ("not found" is done), spaced to respect rate limits. The sweep
interval adapts: 60 s after finding zombies, doubling up to 300 s while there are none.
"""

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.reconcile import CancelOrder, ReconcileParams, find_zombies
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange
from tradecore.ports.repositories import Store

from .recorder import Recorder
from .snapshot import Heartbeats, take_snapshot
from .stop_keeper import StopKeeper


@attrs.frozen(kw_only=True)
class ZombieSettings:
    min_interval_seconds: float = 60
    max_interval_seconds: float = 300
    spacing_seconds: float = 0.2  # between two cancels


@attrs.frozen(kw_only=True)
class SweepReport:
    found: int
    cancelled: int
    skipped: bool = False


class ZombieSweeper:
    def __init__(
        self,
        exchange: Exchange,
        store: Store,
        keeper: StopKeeper,
        recorder: Recorder,
        clock: Clock,
        *,
        heartbeats: Heartbeats | None = None,
        params: ReconcileParams | None = None,
        settings: ZombieSettings | None = None,
    ) -> None:
        self._exchange = exchange
        self._store = store
        self._keeper = keeper
        self._recorder = recorder
        self._clock = clock
        self._heartbeats = heartbeats
        self._params = params or ReconcileParams()
        self.settings = settings or ZombieSettings()
        self.interval_seconds = self.settings.min_interval_seconds

    async def sweep(self) -> SweepReport:
        snapshot = await take_snapshot(self._exchange, self._store, self._clock, self._heartbeats)
        if snapshot is None:
            return SweepReport(found=0, cancelled=0, skipped=True)
        zombies = [a for a in find_zombies(snapshot, self._params) if isinstance(a, CancelOrder)]
        venue = self._exchange.venue.value
        if zombies:
            self._recorder.record(
                EventType.ZOMBIE_ORDERS_DETECTED,
                exchange=venue,
                data={
                    "count": len(zombies),
                    "orders": [
                        {"symbol": z.symbol, "order_id": z.order_id, "kind": z.reason.value}
                        for z in zombies
                    ],
                },
            )
        cancelled = 0
        for index, zombie in enumerate(zombies):
            if index:
                await self._clock.sleep(self.settings.spacing_seconds)
            gone, detail = await self._keeper.cancel_orphan(zombie.symbol, zombie.order_id)
            cancelled += gone
            self._recorder.record(
                EventType.ZOMBIE_ORDER_CANCELLED,
                symbol=zombie.symbol,
                exchange=venue,
                order_id=zombie.order_id,
                correlation_id=zombie.position_id,
                error=None if gone else detail,
                data={"kind": zombie.reason.value, "cancelled": gone, "detail": zombie.detail},
            )
        self._recorder.record(
            EventType.ZOMBIE_CLEANUP_COMPLETED,
            exchange=venue,
            data={
                "found": len(zombies),
                "cancelled": cancelled,
                "next_sweep_seconds": self._adapt(bool(zombies)),
            },
        )
        return SweepReport(found=len(zombies), cancelled=cancelled)

    def _adapt(self, found: bool) -> float:
        if found:
            self.interval_seconds = self.settings.min_interval_seconds
        else:
            self.interval_seconds = min(
                self.interval_seconds * 2, self.settings.max_interval_seconds
            )
        return self.interval_seconds
