import uuid
from datetime import UTC, datetime

import pytest

from tradecore.domain.errors import DomainError
from tradecore.domain.events import Event, EventType, Severity, default_severity

# SPEC §9, copied by hand: the catalogue must hold at least these.
SPEC_EVENT_TYPES = [
    "signal_received",
    "signal_filtered",
    "signal_executed",
    "signal_execution_failed",
    "wave_monitoring_started",
    "wave_detected",
    "wave_completed",
    "wave_not_found",
    "wave_duplicate_detected",
    "position_open_started",
    "entry_order_placed",
    "entry_order_filled",
    "entry_order_failed",
    "stop_loss_placed",
    "stop_loss_failed",
    "stop_loss_replaced",
    "stop_loss_cancelled",
    "position_rollback",
    "emergency_stop_placed",
    "position_duplicate_prevented",
    "risk_limits_exceeded",
    "symbol_unavailable",
    "order_below_minimum",
    "position_closed",
    "trailing_stop_created",
    "trailing_stop_activated",
    "trailing_stop_updated",
    "trailing_stop_breakeven",
    "trailing_stop_removed",
    "protection_check_completed",
    "unprotected_position_found",
    "protection_took_over",
    "synchronization_started",
    "synchronization_completed",
    "phantom_position_closed",
    "missing_position_added",
    "quantity_mismatch_detected",
    "zombie_orders_detected",
    "zombie_order_cancelled",
    "zombie_cleanup_completed",
    "aged_position_detected",
    "aged_exit_order_placed",
    "aged_phase_changed",
    "position_recovery_started",
    "position_recovery_completed",
    "bot_started",
    "bot_stopped",
    "websocket_connected",
    "websocket_disconnected",
    "database_unavailable",
    "database_restored",
    "rate_limit_hit",
    "health_check_failed",
    "critical_error",
]

AT = datetime(2026, 3, 1, 9, 5, tzinfo=UTC)


def test_the_spec_list_was_copied_completely():
    assert len(SPEC_EVENT_TYPES) == 54
    assert len(set(SPEC_EVENT_TYPES)) == 54


@pytest.mark.parametrize("name", SPEC_EVENT_TYPES)
def test_the_catalogue_contains_every_event_type_of_the_spec(name):
    assert EventType(name).value == name


def test_every_event_type_is_stored_under_its_snake_case_name():
    for event_type in EventType:
        assert event_type.value == event_type.name.lower()


def test_a_critical_error_is_critical():
    assert default_severity(EventType.CRITICAL_ERROR) is Severity.CRITICAL


@pytest.mark.parametrize(
    "name",
    ["unprotected_position_found", "emergency_stop_placed", "database_unavailable",
     "health_check_failed"],
)  # fmt: skip
def test_money_at_risk_and_lost_infrastructure_are_errors(name):
    assert default_severity(EventType(name)) is Severity.ERROR


@pytest.mark.parametrize(
    "name",
    ["signal_execution_failed", "entry_order_failed", "stop_loss_failed", "position_rollback",
     "phantom_position_closed", "missing_position_added", "quantity_mismatch_detected",
     "zombie_orders_detected", "protection_took_over", "wave_duplicate_detected",
     "wave_not_found", "risk_limits_exceeded", "rate_limit_hit", "websocket_disconnected",
     "aged_position_detected", "position_duplicate_prevented", "symbol_unavailable",
     "order_below_minimum"],
)  # fmt: skip
def test_failures_and_surprises_are_at_least_warnings(name):
    assert default_severity(EventType(name)) >= Severity.WARNING


@pytest.mark.parametrize(
    "name",
    ["signal_received", "wave_completed", "entry_order_filled", "stop_loss_placed",
     "trailing_stop_updated", "position_closed", "bot_started", "bot_stopped",
     "protection_check_completed", "synchronization_completed", "database_restored"],
)  # fmt: skip
def test_routine_events_are_info(name):
    assert default_severity(EventType(name)) is Severity.INFO


def test_every_event_type_has_a_severity_of_info_or_above():
    assert all(default_severity(t) >= Severity.INFO for t in EventType)


def test_an_event_takes_its_types_default_severity_unless_told_otherwise():
    plain = Event(id=uuid.uuid4(), type=EventType.STOP_LOSS_FAILED, created_at=AT)
    escalated = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_FAILED,
        created_at=AT,
        severity=Severity.CRITICAL,
    )
    assert plain.severity is Severity.WARNING
    assert escalated.severity is Severity.CRITICAL


def test_an_event_carries_the_columns_of_the_events_table():
    event = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_PLACED,
        created_at=AT,
        data={"stop_price": "62080"},
        correlation_id="op1",
        position_id="op1",
        order_id="123",
        symbol="BTCUSDT",
        exchange="binance",
    )
    assert (event.correlation_id, event.position_id, event.order_id) == ("op1", "op1", "123")
    assert (event.symbol, event.exchange, event.data) == (
        "BTCUSDT",
        "binance",
        {"stop_price": "62080"},
    )
    assert event.error_message is None and event.stack_trace is None


def test_events_without_data_do_not_share_one_dictionary():
    a = Event(id=uuid.uuid4(), type=EventType.BOT_STARTED, created_at=AT)
    b = Event(id=uuid.uuid4(), type=EventType.BOT_STARTED, created_at=AT)
    assert a.data == {} and a.data is not b.data


def test_an_event_time_without_a_timezone_is_refused():
    with pytest.raises(DomainError, match="timezone-aware"):
        Event(id=uuid.uuid4(), type=EventType.BOT_STARTED, created_at=datetime(2026, 3, 1))
