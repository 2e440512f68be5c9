"""The cross-process checker catches each break it is there for (synthetic exchange states)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from tradecore.domain.model import Side
from tradecore.domain.positions import PositionState

from .exchange_invariants import (
    Life,
    SyncPass,
    double_entry_breaks,
    full_quantity_breaks,
    journal_breaks,
    market_close_breaks,
    protection_breaks,
    zombie_breaks,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def up(spawned: float, recovered: float | None, ended: float | None) -> Life:
    def moment(s: float | None) -> datetime | None:
        return None if s is None else T0 + timedelta(seconds=s)

    return Life(
        spawned=T0 + timedelta(seconds=spawned), recovered=moment(recovered), ended=moment(ended)
    )


def order(**fields: Any) -> dict[str, Any]:
    base = {
        "order_id": "1",
        "client_order_id": "tc-op1-s1",
        "symbol": "BTCUSDT",
        "side": "sell",
        "type": "stop_market",
        "status": "open",
        "open": True,
        "stop": True,
        "quantity": "0.01",
        "filled": "0",
        "trigger_price": "48500",
        "reduce_only": True,
        "close_position": False,
        "origin": "api",
        "created_at": at(1),
        "updated_at": at(1),
    }
    return {**base, **fields}


def state(now: float, **parts: Any) -> dict[str, Any]:
    return {
        "now": at(now),
        "positions": [],
        "orders": [],
        "position_records": [],
        "amendments": [],
        "refusals": [],
        **parts,
    }


def record(gaps: list[tuple[float, float | None]], counts: list[tuple[float, int]]) -> dict:
    return {
        "position_id": "p1",
        "symbol": "BTCUSDT",
        "side": "long",
        "opened_at": at(0),
        "closed_at": None,
        "close_reason": None,
        "stop_counts": [[at(t), c] for t, c in counts],
        "unprotected": [[at(s), None if e is None else at(e)] for s, e in gaps],
    }


ALWAYS_UP = [up(-10, -5, None)]


def test_a_gap_longer_than_a_round_trip_while_the_runner_lived_is_a_break() -> None:
    short = state(20, position_records=[record([(0, 0.5)], [(0, 0), (0.5, 1)])])
    long = state(20, position_records=[record([(0, 5)], [(0, 0), (5, 1)])])
    assert protection_breaks(short, ALWAYS_UP, round_trip=1) == []
    assert protection_breaks(long, ALWAYS_UP, round_trip=1)


def test_a_gap_across_a_kill_is_allowed_until_the_next_recovery_and_one_round_trip() -> None:
    lives = [up(-10, -5, 0.2), up(1, 6, None)]
    healed = state(20, position_records=[record([(0, 6.5)], [(0, 0), (6.5, 1)])])
    late = state(20, position_records=[record([(0, 9)], [(0, 0), (9, 1)])])
    assert protection_breaks(healed, lives, round_trip=1) == []
    assert protection_breaks(late, lives, round_trip=1)


def test_two_stops_beyond_a_replacement_and_three_ever_are_breaks() -> None:
    replaced = state(
        20, position_records=[record([(0, 0.1)], [(0, 0), (0.1, 1), (5, 2), (5.2, 1)])]
    )
    stuck = state(20, position_records=[record([(0, 0.1)], [(0, 0), (0.1, 1), (5, 2), (9, 1)])])
    three = state(20, position_records=[record([(0, 0.1)], [(0, 0), (0.1, 3), (0.2, 1)])])
    assert protection_breaks(replaced, ALWAYS_UP, round_trip=1) == []
    assert protection_breaks(stuck, ALWAYS_UP, round_trip=1)
    assert any("3 stops" in b for b in protection_breaks(three, ALWAYS_UP, round_trip=1))


def test_a_stop_for_less_than_the_position_or_none_or_two_is_a_break() -> None:
    position = {"symbol": "BTCUSDT", "side": "long", "quantity": "0.02", "entry_price": "50000"}
    assert full_quantity_breaks(state(1, positions=[position], orders=[order()]))
    assert full_quantity_breaks(state(1, positions=[position], orders=[]))
    two = [order(quantity="0.02"), order(order_id="2", quantity="0.02")]
    assert full_quantity_breaks(state(1, positions=[position], orders=two))
    assert (
        full_quantity_breaks(state(1, positions=[position], orders=[order(quantity="0.02")])) == []
    )


def test_two_entries_of_one_operation_are_a_break() -> None:
    def entry(client_id: str) -> dict[str, Any]:
        return order(
            client_order_id=client_id,
            type="market",
            stop=False,
            reduce_only=False,
            open=False,
            status="filled",
            filled="0.01",
        )

    assert double_entry_breaks(state(1, orders=[entry("tc-op1-e1"), entry("tc-op2-e1")])) == []
    assert double_entry_breaks(state(1, orders=[entry("tc-op1-e1"), entry("tc-op1-e2")]))
    assert double_entry_breaks(state(1, orders=[entry("tc-op1-e1"), entry("tc-op1-e1")]))


def test_a_stop_outliving_its_position_beyond_the_zombie_interval_is_a_break() -> None:
    closed = record([(0, 0.1)], [(0, 0), (0.1, 1)])
    closed["closed_at"] = at(2)
    swept = state(30, position_records=[closed], orders=[order(open=False, updated_at=at(8))])
    zombie = state(30, position_records=[closed], orders=[order()])
    assert zombie_breaks(swept, ALWAYS_UP, zombie_interval=5, round_trip=1) == []
    assert zombie_breaks(zombie, ALWAYS_UP, zombie_interval=5, round_trip=1)


def test_a_position_the_bot_closed_at_market_is_a_break_naming_the_refusals() -> None:
    closed = record([(0, 0.1)], [(0, 0), (0.1, 1)])
    closed.update(closed_at=at(5), close_reason="api")
    refusal = {"at": at(3), "op": "create_stop_order", "symbol": "BTCUSDT", "code": "-4116"}
    [problem] = market_close_breaks(state(9, position_records=[closed], refusals=[refusal]))
    assert "-4116" in problem
    closed["close_reason"] = "stop"
    assert market_close_breaks(state(9, position_records=[closed])) == []


def test_a_journal_that_disagrees_with_the_exchange_after_the_stop_is_a_break() -> None:
    position = {"symbol": "BTCUSDT", "side": "long", "quantity": "0.01", "entry_price": "1"}
    active = SimpleNamespace(
        symbol="BTCUSDT", state=PositionState.ACTIVE, side=Side.LONG, quantity=Decimal("0.01")
    )

    def breaks(
        exchange: dict[str, Any],
        journal: list[Any],
        *,
        stopping: float = 8,
        passes: tuple[tuple[float, float], ...] = (),
        busy: tuple[tuple[float, float | None], ...] = (),
        up_since: float | None = None,
    ) -> list[str]:
        def moment(s: float | None) -> datetime | None:
            return None if s is None else T0 + timedelta(seconds=s)

        return journal_breaks(
            exchange,
            journal,
            passes=[
                SyncPass(started=T0 + timedelta(seconds=a), completed=T0 + timedelta(seconds=b))
                for a, b in passes
            ],
            busy={"BTCUSDT": [(T0 + timedelta(seconds=a), moment(b)) for a, b in busy]},
            stopping=T0 + timedelta(seconds=stopping),
            lag=2,
            up_since=moment(up_since),
        )

    agreed = state(9, positions=[position])
    assert breaks(agreed, [active]) == []
    assert breaks(agreed, [])
    halved = SimpleNamespace(**{**vars(active), "quantity": Decimal("0.005")})
    assert breaks(agreed, [halved])
    closed = record([(0, 0.1)], [(0, 0), (0.1, 1)])
    closed.update(closed_at=at(7), close_reason="stop")
    flat = state(9, position_records=[closed])
    # the stop fired a second before the runner was stopped and no sync pass looked since:
    # the next start's recovery closes it
    assert breaks(flat, [active], stopping=8, passes=((1, 1.1), (6.9, 7.2))) == []
    # ... but not when it fired long before and no pass came (a pass skipped, the loop dead)
    assert breaks(flat, [active], stopping=20, passes=((1, 1.1),))
    # ... unless it fired while the last runner was still recovering (its recovery's sync
    # pass came before; its loops, the periodic sync among them, began only at `up_since`)
    assert breaks(flat, [active], stopping=20, passes=((1, 1.1),), up_since=19) == []
    assert breaks(flat, [active], stopping=20, passes=((1, 1.1),), up_since=10)
    # a pass that started after it fired and completed must have closed it
    [problem] = breaks(flat, [active], stopping=8, passes=((7.5, 7.6),))
    assert "07.500000 to 12:00:07.600000 left it open" in problem
    # unless an operation in flight on the symbol made the pass leave it to the next one
    assert breaks(flat, [active], passes=((7.5, 7.6),), busy=((7.4, 7.55),)) == []
    assert breaks(flat, [active], passes=((7.5, 7.6),), busy=((7.0, 7.4),))
    # or the pass found it flat but could not confirm the close (it journaled the symbol as
    # left): a venue read that failed under the keeper's lock; the next pass closes it
    left = [
        SyncPass(
            started=T0 + timedelta(seconds=7.5),
            completed=T0 + timedelta(seconds=7.6),
            left=frozenset({"BTCUSDT"}),
        )
    ]
    stopped = T0 + timedelta(seconds=8)
    assert journal_breaks(flat, [active], passes=left, busy={}, stopping=stopped, lag=2) == []
    assert journal_breaks(
        flat, [active], passes=left, busy={}, stopping=stopped + timedelta(seconds=20), lag=2
    )
