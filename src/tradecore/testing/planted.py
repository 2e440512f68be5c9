"""Planted bugs: switch one of issue 10's stories back on, to prove a test can find it.

    with planted(2):
        ...  # the keeper answers "unchanged" from the journal again

Each switch monkeypatches the running application's classes while the context is active
(no hooks in the application's code) and restores them on exit. Not thread-safe; one at a
time. The simulator's CI seeds and the story tests must fail under each one.

1: the guard acts on its stale read (the keeper decides on the guard's snapshot, not on a
   fresh read of the symbol under its lock);
2: the keeper answers "unchanged" from the journal alone, without asking the venue;
7: "already done" answers (-4116, 110072, 34040) are taken as failures;
8: a replacement a crash interrupted is not adopted, and every later move of that position
   reuses its client id (the story: "every later move reuses the same client id and gets
   -4116"); other moves make their id from the position's version, so a move that saved
   nothing is sent again under the previous one.
"""

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from tradecore.app import commands, protection, stop_keeper, stop_writer
from tradecore.domain.orders import OrderRole, client_order_id
from tradecore.domain.positions import Operation, OperationKind, Position
from tradecore.domain.reconcile import Snapshot

PLANTABLE = (1, 2, 7, 8)


@contextlib.contextmanager
def planted(story: int) -> Iterator[None]:
    """While active, the application has story `story`'s bug again."""
    if story not in PLANTABLE:
        raise ValueError(f"story {story} cannot be planted; plantable: {PLANTABLE}")
    with contextlib.ExitStack() as undo:
        for target, name, replacement in _PLANTS[story]():
            original = getattr(target, name)
            setattr(target, name, replacement)
            undo.callback(setattr, target, name, original)
        yield


def _stale_reads() -> list[tuple[Any, str, Any]]:
    last: dict[str, Snapshot] = {}
    take = protection.take_snapshot

    async def remembering(*args: Any, **kwargs: Any) -> Snapshot | None:
        snapshot = await take(*args, **kwargs)
        if snapshot is not None:
            last["guard"] = snapshot
        return snapshot

    fresh = stop_keeper.StopKeeper._read

    async def stale(
        self: stop_keeper.StopKeeper, position: Position, heartbeats: Mapping[str, datetime]
    ) -> Snapshot:
        seen = last.get("guard")
        if seen is None:
            return await fresh(self, position, heartbeats)
        return attrs.evolve(
            seen,
            positions=(position,),
            venue_positions=tuple(v for v in seen.venue_positions if v.symbol == position.symbol),
            orders=tuple(o for o in seen.orders if o.symbol == position.symbol),
            operations=(),
        )

    return [(protection, "take_snapshot", remembering), (stop_keeper.StopKeeper, "_read", stale)]


def _journal_only() -> list[tuple[Any, str, Any]]:
    apply = stop_writer.StopWriter.apply

    async def trusting(self: stop_writer.StopWriter, *args: Any, **kwargs: Any) -> Any:
        kwargs["verified"] = False
        return await apply(self, *args, **kwargs)

    async def stands(self: stop_writer.StopWriter, position: Position) -> bool:
        return True

    return [
        (stop_writer.StopWriter, "apply", trusting),
        (stop_writer.StopWriter, "_stands", stands),
    ]


def _done_is_failure() -> list[tuple[Any, str, Any]]:
    return [(commands, "ALREADY_DONE", frozenset())]


def _reused_ids() -> list[tuple[Any, str, Any]]:
    # the client id of each position's interrupted replacement, kept across the simulated
    # process's deaths as the old bot kept it in the position's row
    stuck: dict[str, str] = {}

    async def start(
        self: stop_writer.StopWriter,
        position: Position,
        kind: OperationKind,
        role: OrderRole,
        *,
        target_price: Decimal | None = None,
    ) -> Operation:
        cid = stuck.get(position.id) or client_order_id(position.id, role, position.version)
        operation = Operation(
            id=self._ids.new_id(),
            kind=kind,
            venue=position.venue,
            symbol=position.symbol,
            position_id=position.id,
            started_at=self._clock.now(),
            client_order_ids=(cid,),
            target_price=target_price,
        )
        await self._store.operations.start(operation)
        return operation

    async def not_adopted(self: stop_writer.StopWriter, operation: Operation) -> str:
        if operation.position_id is not None and operation.client_order_ids:
            stuck[operation.position_id] = operation.client_order_ids[0]
        return "interrupted"

    return [
        (stop_writer.StopWriter, "_start", start),
        (stop_writer.StopWriter, "_adopt_interrupted", not_adopted),
    ]


_PLANTS = {1: _stale_reads, 2: _journal_only, 7: _done_is_failure, 8: _reused_ids}
