"""The dashboard's view model from rows alone: the aged schedule's cap time, what the journal
calls unprotected, and a wave's signals grouped with their fates."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tradecore.adapters.dashboard import Inputs, build_view
from tradecore.adapters.dashboard.view import hours_to_cap
from tradecore.adapters.reporting.source import EventRow, PositionRow
from tradecore.domain.aged import AgedParams, concession_percent

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
MINUTE = Decimal(1) / 60


def position(pid: str, symbol: str, stop: str | None) -> PositionRow:
    return PositionRow(
        id=pid,
        exchange="binance",
        symbol=symbol,
        side="long",
        state="active",
        quantity=Decimal(2),
        entry_price=Decimal(100),
        stop_price=None if stop is None else Decimal(stop),
        stop_owner="initial" if stop else None,
        exit_price=None,
        realized_pnl=None,
        created_at=T0,
        opened_at=T0,
        closed_at=None,
        close_reason=None,
        adopted=False,
    )


def event(seq: int, kind: str, **fields: Any) -> EventRow:
    data = fields.pop("data", {})
    return EventRow(
        seq=seq,
        type=kind,
        created_at=T0 + timedelta(seconds=seq),
        severity="INFO",
        data=data,
        **fields,
    )


def test_with_the_default_schedule_the_cap_comes_15_h_22_min_after_grace() -> None:
    # 10 h at 0.5 %/h = 5 %; then 0.6, 0.72, 0.864, 1.0368, 1.24416 (9.46496 % after 15 h)
    # and 1.492992 %/h: 10 % at 15 h + 0.3583 h
    assert abs(hours_to_cap(AgedParams()) - Decimal("15.3583")) <= MINUTE


@given(
    step=st.decimals("0.05", "5", places=2),
    factor=st.decimals("1", "2", places=2),
    after=st.integers(0, 24),
    cap=st.decimals("0.5", "50", places=1),
)
def test_the_cap_time_is_the_first_minute_the_concession_reaches_the_cap(
    step: Decimal, factor: Decimal, after: int, cap: Decimal
) -> None:
    params = AgedParams(
        loss_step_percent=step,
        acceleration_factor=factor,
        acceleration_after_hours=Decimal(after),
        max_loss_percent=cap,
    )
    hours = hours_to_cap(params)
    assert concession_percent(hours, params) >= cap
    assert concession_percent(hours - MINUTE, params) < cap


def test_from_the_journal_a_position_without_a_stop_or_found_bare_is_unprotected() -> None:
    held = [position("p1", "AUSDT", "97"), position("p2", "BUSDT", None)]
    held.append(position("p3", "CUSDT", "97"))
    events = [
        event(1, "stop_loss_placed", position_id="p3", data={"owner": "initial"}),
        event(2, "unprotected_position_found", position_id="p3"),
        event(3, "stop_loss_placed", position_id="p1", data={"owner": "initial"}),
    ]
    view = build_view(
        Inputs(
            now=T0 + timedelta(minutes=1),
            positions=held,
            events=events,
            fates=[],
            lifecycle=[],
            trailing=[],
            alerts=[],
        )
    )
    assert view["source"] == "database"
    assert view["unprotected"]["position_ids"] == ["p2", "p3"]
    protection = next(c for c in view["health"]["components"] if c["name"] == "protection")
    assert protection["ok"] is False


def test_a_waves_signals_are_listed_with_their_fates_newest_wave_first() -> None:
    fates = [
        event(1, "signal_executed", correlation_id="wave-A", symbol="AUSDT",
              data={"signal_id": "s1", "fate": "opened"}),
        event(2, "signal_filtered", correlation_id="wave-A", symbol="BUSDT",
              data={"signal_id": "s2", "fate": "filtered", "reason": "stop_list"}),
        event(3, "wave_completed", correlation_id="wave-A"),
        event(4, "signal_expired", correlation_id="wave-B", symbol="CUSDT",
              data={"signal_id": "s3", "fate": "expired", "reason": "bot_stopped"}),
    ]  # fmt: skip
    view = build_view(
        Inputs(
            now=T0,
            positions=[],
            events=[],
            fates=fates,
            lifecycle=[],
            trailing=[],
            alerts=[],
        )
    )
    [b, a] = view["waves"]
    assert (b["wave"], b["outcome"], b["fates"]) == ("wave-B", None, {"expired": 1})
    assert (a["wave"], a["outcome"]) == ("wave-A", "wave_completed")
    assert [(s["signal_id"], s["fate"], s["reason"]) for s in a["signals"]] == [
        ("s1", "opened", None),
        ("s2", "filtered", "stop_list"),
    ]
