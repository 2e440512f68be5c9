"""The write spool: every write a port marks `@may_wait` comes back from the file as it went in,
a restart reads on from what landed, and a torn or foreign line is skipped, not fatal."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from tradecore.adapters.journal import WriteSpoolFile, event_row
from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.orders import Order, OrderRole, OrderStatus, OrderType
from tradecore.domain.positions import (
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
)
from tradecore.domain.signals import Signal
from tradecore.domain.trailing import TrailingPhase, TrailingState
from tradecore.ports.alerts import Alert
from tradecore.ports.repositories import HeldWrite, Store, waits

T = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def plain(writes: Sequence[HeldWrite]) -> list[tuple[str, str, dict[str, Any]]]:
    """The writes as values (a Position is an entity: it compares by identity; events as
    the rows the database stores for them)."""
    return [
        (
            w.repository,
            w.method,
            {k: _value(v) for k, v in w.arguments.items()},
        )
        for w in writes
    ]


def _value(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, tuple | list) and all(isinstance(v, Event) for v in value):
        return [event_row(v) for v in value]
    return value


def every_write() -> list[HeldWrite]:
    position = Position(
        id="p1",
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        side=Side.SHORT,
        state=PositionState.ACTIVE,
        requested_quantity=Decimal("0.010"),
        quantity=Decimal("0.010"),
        entry_price=Decimal("50000.10"),
        stop_price=Decimal("51000.5"),
        stop_owner=StopOwner.TRAILING,
        created_at=T,
        opened_at=T,
        version=7,
    )
    order = Order(
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        order_id="o1",
        client_order_id="tc-1",
        side=OrderSide.BUY,
        type=OrderType.POSITION_STOP,
        quantity=Decimal("0.010"),
        status=OrderStatus.OPEN,
        trigger_price=Decimal("51000.5"),
        created_at=T,
    )
    trailing = TrailingState(
        position_id="p1",
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        side=Side.SHORT,
        entry_price=Decimal("50000.10"),
        quantity=Decimal("0.010"),
        opened_at=T,
        phase=TrailingPhase.TRIGGERED,
        best_price=Decimal("49000"),
        stop_price=Decimal("49500.00000001"),
        triggered_from=TrailingPhase.ACTIVE,
    )
    operation = Operation(
        id="op1",
        kind=OperationKind.REPLACE_STOP,
        venue=Venue.BYBIT,
        symbol="BTCUSDT",
        position_id="p1",
        client_order_ids=("tc-1", "tc-2"),
        started_at=T,
    )
    signal = Signal(
        id="s1",
        symbol="BTCUSDT",
        venue=Venue.BYBIT,
        side=Side.SHORT,
        score_week=Decimal("81.5"),
        score_month=Decimal(70),
        wave=T,
        created_at=T,
    )
    alert = Alert(key="k", severity=Severity.CRITICAL, title="t", text="x\u00e9")
    # the events a change is saved with: Decimal, time, nested values as the app records them
    replaced = Event(
        id=uuid.UUID(int=7),
        type=EventType.STOP_LOSS_REPLACED,
        created_at=T,
        data={
            "price": Decimal("51000.5"),
            "previous_price": None,
            "at": T,
            "why": {"levels": [Decimal("1E-8"), 2]},
        },
        position_id="p1",
        symbol="BTCUSDT",
        exchange="bybit",
        order_id="o1",
    )
    return [
        HeldWrite(
            repository="positions",
            method="save",
            arguments={"position": position, "events": (replaced,)},
        ),
        HeldWrite(
            repository="positions",
            method="save",
            arguments={"position": attrs.evolve(position, version=8), "events": ()},
        ),
        HeldWrite(
            repository="orders",
            method="record",
            arguments={"order": order, "role": OrderRole.STOP, "position_id": "p1"},
        ),
        HeldWrite(repository="trailing", method="save", arguments={"state": trailing}),
        HeldWrite(repository="trailing", method="delete", arguments={"position_id": "p1"}),
        HeldWrite(repository="operations", method="start", arguments={"operation": operation}),
        HeldWrite(
            repository="operations",
            method="finish",
            arguments={"operation_id": "op1", "at": T, "outcome": "done"},
        ),
        HeldWrite(
            repository="waves",
            method="complete",
            arguments={"wave": T, "at": T, "summary": {"signals": 2, "opened": 1}},
        ),
        HeldWrite(
            repository="signals", method="add", arguments={"signal": signal, "received_at": T}
        ),
        HeldWrite(
            repository="alerts",
            method="add",
            arguments={"alert": alert, "at": T, "delivered": False},
        ),
    ]


def test_every_write_that_may_wait_comes_back_from_the_spool_as_it_went_in(tmp_path: Path) -> None:
    writes = every_write()
    ports = Store.__annotations__
    assert {(w.repository, w.method) for w in writes} == {
        (name, method)
        for name, port in ports.items()
        for method in dir(port)
        if waits(port, method)
    }  # the test covers every marked write
    spool = WriteSpoolFile(tmp_path / "w.spool")
    for write in writes:
        spool.hold(write)

    assert plain(WriteSpoolFile(tmp_path / "w.spool").held()) == plain(writes)


def test_a_restart_reads_on_from_what_landed_and_skips_a_torn_line(tmp_path: Path) -> None:
    writes = every_write()
    spool = WriteSpoolFile(tmp_path / "w.spool")
    for write in writes[:3]:
        spool.hold(write)
    spool.landed(2)
    with (tmp_path / "w.spool").open("a") as f:
        f.write('{"repository": "positions", "meth')  # a crash in the middle of an append

    again = WriteSpoolFile(tmp_path / "w.spool")
    assert plain(again.held()) == plain(writes[2:3])
    again.hold(writes[3])
    assert plain(WriteSpoolFile(tmp_path / "w.spool").held()) == plain(writes[2:4])
    again.landed(2)
    assert (tmp_path / "w.spool").stat().st_size == 0
    assert list(WriteSpoolFile(tmp_path / "w.spool").held()) == []


def test_a_crash_after_the_spool_is_emptied_loses_no_write_held_later(tmp_path: Path) -> None:
    # `landed` empties the file, then records offset 0 beside it. A crash between the two
    # leaves `.landed` at an old offset over an empty file: the disk as the crash leaves it.
    writes = every_write()
    path = tmp_path / "w.spool"
    landed = tmp_path / "w.spool.landed"
    first = WriteSpoolFile(path)
    first.hold(writes[0])
    first.hold(writes[1])
    first.landed(1)
    stale = landed.read_text()
    first.landed(1)
    landed.write_text(stale)  # the crash: the file is empty, `.landed` still says line 1's end
    assert path.stat().st_size == 0

    second = WriteSpoolFile(path)  # restart: nothing to replay; the database is down again
    assert list(second.held()) == []
    second.hold(writes[2])
    second.hold(writes[3])  # ... and this run crashes before either lands

    assert plain(WriteSpoolFile(path).held()) == plain(writes[2:4])
