"""What reconciliation looks at, read so that nothing changing meanwhile is misjudged.

The journal is read before and after the venue. A symbol whose journal changed between the
two reads (a position opened, a stop moved, an operation started or finished) is treated as
busy: reconciliation leaves it alone this pass rather than act on a half-seen change.
"""

from collections.abc import Callable, Mapping
from datetime import datetime

from tradecore.domain.positions import Operation, OperationKind, Position
from tradecore.domain.reconcile import Snapshot
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import Exchange, ExchangeUnavailable
from tradecore.ports.repositories import Store, StoreUnavailable

Heartbeats = Callable[[], Mapping[str, datetime]]


async def take_snapshot(
    exchange: Exchange,
    store: Store,
    clock: Clock,
    heartbeats: Heartbeats | None = None,
    *,
    refused: list[str] | None = None,
) -> Snapshot | None:
    """The journal and the venue side by side; None when either could not be read (and then
    "venue" or "database" is appended to `refused`, when given, to say which)."""
    venue = exchange.venue
    try:
        before = await _journal(store, venue)
        held = await exchange.fetch_positions()
        orders = await exchange.fetch_open_orders()
        after = await _journal(store, venue)
    except (ExchangeUnavailable, StoreUnavailable) as error:
        if refused is not None:
            refused.append("venue" if isinstance(error, ExchangeUnavailable) else "database")
        return None
    now = clock.now()
    operations = {op.id: op for op in (*before[1], *after[1])}
    for position in _changed(before[0], after[0]):
        operations[f"changed-{position.id}"] = Operation(
            id=f"changed-{position.id}",
            kind=OperationKind.OPEN,
            venue=venue,
            symbol=position.symbol,
            position_id=position.id,
            started_at=now,
        )
    return Snapshot(
        venues=frozenset({venue}),
        positions=tuple(before[0].values()),
        venue_positions=tuple(held),
        orders=tuple(orders),
        now=now,
        operations=tuple(operations.values()),
        trailing_heartbeats=dict(heartbeats()) if heartbeats else {},
    )


async def _journal(store: Store, venue: object) -> tuple[dict[str, Position], list[Operation]]:
    positions = {p.id: p for p in await store.positions.open_positions() if p.venue == venue}
    operations = [op for op in await store.operations.in_flight() if op.venue == venue]
    return positions, operations


def _changed(before: dict[str, Position], after: dict[str, Position]) -> list[Position]:
    changed = [
        p for pid, p in after.items() if pid not in before or before[pid].version != p.version
    ]
    changed += [p for pid, p in before.items() if pid not in after]
    return changed
