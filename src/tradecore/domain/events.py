"""The event catalogue (SPEC §9) and the event value every state change produces."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

import attrs

from tradecore.domain.errors import DomainError


class Severity(IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


class EventType(StrEnum):
    # signals and waves
    SIGNAL_RECEIVED = "signal_received"
    SIGNAL_REJECTED = "signal_rejected"  # a message that does not parse or validate
    SIGNAL_FILTERED = "signal_filtered"
    SIGNAL_EXECUTED = "signal_executed"
    SIGNAL_EXECUTION_FAILED = "signal_execution_failed"
    SIGNAL_RANKED_OUT = "signal_ranked_out"  # passed the filters, not opened: ranked out
    SIGNAL_EXPIRED = "signal_expired"  # its wave was taken before it came, or never will be
    WAVE_MONITORING_STARTED = "wave_monitoring_started"
    WAVE_DETECTED = "wave_detected"
    WAVE_COMPLETED = "wave_completed"
    WAVE_NOT_FOUND = "wave_not_found"
    WAVE_DUPLICATE_DETECTED = "wave_duplicate_detected"
    WAVE_SKIPPED = "wave_skipped"  # its check could not run within its window
    # opening
    POSITION_OPEN_STARTED = "position_open_started"
    ENTRY_ORDER_PLACED = "entry_order_placed"
    ENTRY_ORDER_FILLED = "entry_order_filled"
    ENTRY_ORDER_FAILED = "entry_order_failed"
    STOP_LOSS_PLACED = "stop_loss_placed"
    STOP_LOSS_FAILED = "stop_loss_failed"
    STOP_LOSS_REPLACED = "stop_loss_replaced"
    STOP_LOSS_CANCELLED = "stop_loss_cancelled"
    STOP_LOSS_FILLED = "stop_loss_filled"  # the stop triggered and filled on the venue
    POSITION_ROLLBACK = "position_rollback"
    EMERGENCY_STOP_PLACED = "emergency_stop_placed"
    POSITION_DUPLICATE_PREVENTED = "position_duplicate_prevented"
    RISK_LIMITS_EXCEEDED = "risk_limits_exceeded"
    SYMBOL_UNAVAILABLE = "symbol_unavailable"
    ORDER_BELOW_MINIMUM = "order_below_minimum"
    # leverage and margin mode, set on each symbol before its first entry (app/leverage.py)
    LEVERAGE_SET = "leverage_set"
    LEVERAGE_NOT_SET = "leverage_not_set"
    # an open refused, or a position closed, whose liquidation comes before its stop
    LIQUIDATION_INSIDE_STOP = "liquidation_inside_stop"
    POSITION_CLOSED = "position_closed"
    # a market close the venue took that left part of the position open (or unread)
    MARKET_CLOSE_INCOMPLETE = "market_close_incomplete"
    # exit price, fees, funding and realized PnL from the venue's own fills (app/settlement.py)
    POSITION_PNL_RECORDED = "position_pnl_recorded"
    # trailing
    TRAILING_STOP_CREATED = "trailing_stop_created"
    TRAILING_STOP_ACTIVATED = "trailing_stop_activated"
    TRAILING_STOP_UPDATED = "trailing_stop_updated"
    TRAILING_STOP_BREAKEVEN = "trailing_stop_breakeven"
    TRAILING_STOP_REMOVED = "trailing_stop_removed"
    # protection, sync, zombies
    PROTECTION_CHECK_COMPLETED = "protection_check_completed"
    UNPROTECTED_POSITION_FOUND = "unprotected_position_found"
    PROTECTION_TOOK_OVER = "protection_took_over"
    SYNCHRONIZATION_STARTED = "synchronization_started"
    SYNCHRONIZATION_COMPLETED = "synchronization_completed"
    PHANTOM_POSITION_CLOSED = "phantom_position_closed"
    MISSING_POSITION_ADDED = "missing_position_added"
    QUANTITY_MISMATCH_DETECTED = "quantity_mismatch_detected"
    ZOMBIE_ORDERS_DETECTED = "zombie_orders_detected"
    ZOMBIE_ORDER_CANCELLED = "zombie_order_cancelled"
    ZOMBIE_CLEANUP_COMPLETED = "zombie_cleanup_completed"
    # aged positions
    AGED_POSITION_DETECTED = "aged_position_detected"
    AGED_EXIT_ORDER_PLACED = "aged_exit_order_placed"
    AGED_PHASE_CHANGED = "aged_phase_changed"
    # process
    POSITION_RECOVERY_STARTED = "position_recovery_started"
    POSITION_RECOVERY_COMPLETED = "position_recovery_completed"
    BOT_STARTED = "bot_started"
    BOT_STOPPED = "bot_stopped"
    WEBSOCKET_CONNECTED = "websocket_connected"
    WEBSOCKET_DISCONNECTED = "websocket_disconnected"
    DATABASE_UNAVAILABLE = "database_unavailable"
    DATABASE_RESTORED = "database_restored"
    JOURNAL_SPOOL_CORRUPT = "journal_spool_corrupt"
    RATE_LIMIT_HIT = "rate_limit_hit"
    HEALTH_CHECK_FAILED = "health_check_failed"
    CRITICAL_ERROR = "critical_error"
    # operations
    ALERT_DELIVERY_FAILED = "alert_delivery_failed"  # Telegram/webhook did not take an alert
    # a message to the bot's Telegram commands from a chat other than the configured one
    OPERATOR_MESSAGE_IGNORED = "operator_message_ignored"
    # `venue-check`: one venue fact of the answer corpus checked on a demo account, and the run
    VENUE_FACT_CHECKED = "venue_fact_checked"
    VENUE_CHECK_COMPLETED = "venue_check_completed"


_WARNING = {
    EventType.SIGNAL_REJECTED,
    EventType.SIGNAL_EXECUTION_FAILED,
    EventType.SIGNAL_EXPIRED,
    EventType.WAVE_NOT_FOUND,
    EventType.WAVE_DUPLICATE_DETECTED,
    EventType.ENTRY_ORDER_FAILED,
    EventType.STOP_LOSS_FAILED,
    EventType.POSITION_ROLLBACK,
    EventType.POSITION_DUPLICATE_PREVENTED,
    EventType.RISK_LIMITS_EXCEEDED,
    EventType.SYMBOL_UNAVAILABLE,
    EventType.ORDER_BELOW_MINIMUM,
    EventType.LEVERAGE_NOT_SET,
    EventType.LIQUIDATION_INSIDE_STOP,
    EventType.MARKET_CLOSE_INCOMPLETE,
    EventType.PHANTOM_POSITION_CLOSED,
    EventType.MISSING_POSITION_ADDED,
    EventType.QUANTITY_MISMATCH_DETECTED,
    EventType.ZOMBIE_ORDERS_DETECTED,
    EventType.PROTECTION_TOOK_OVER,
    EventType.AGED_POSITION_DETECTED,
    EventType.WEBSOCKET_DISCONNECTED,
    EventType.JOURNAL_SPOOL_CORRUPT,
    EventType.RATE_LIMIT_HIT,
    EventType.OPERATOR_MESSAGE_IGNORED,
}
_ERROR = {
    EventType.WAVE_SKIPPED,
    EventType.UNPROTECTED_POSITION_FOUND,
    EventType.EMERGENCY_STOP_PLACED,
    EventType.DATABASE_UNAVAILABLE,
    EventType.HEALTH_CHECK_FAILED,
    EventType.ALERT_DELIVERY_FAILED,
}
_CRITICAL = {EventType.CRITICAL_ERROR}


def default_severity(event_type: EventType) -> Severity:
    """The severity an event of this type carries unless the emitter says otherwise."""
    if event_type in _CRITICAL:
        return Severity.CRITICAL
    if event_type in _ERROR:
        return Severity.ERROR
    if event_type in _WARNING:
        return Severity.WARNING
    return Severity.INFO


@attrs.frozen(kw_only=True)
class Event:
    """One recorded state change. `id` makes replay idempotent; time comes from the clock port."""

    id: uuid.UUID
    type: EventType
    created_at: datetime = attrs.field()
    severity: Severity = attrs.field()
    data: Mapping[str, Any] = attrs.field(factory=dict)
    correlation_id: str | None = None
    position_id: str | None = None
    order_id: str | None = None
    symbol: str | None = None
    exchange: str | None = None
    error_message: str | None = None
    stack_trace: str | None = None

    @severity.default
    def _severity(self) -> Severity:
        return default_severity(self.type)

    @created_at.validator
    def _aware(self, _: "attrs.Attribute[datetime]", value: datetime) -> None:
        if value.tzinfo is None:
            raise DomainError("event time must be timezone-aware (UTC)")
