"""Trailing stop (SPEC §4) as a pure transition. State and parameters are defined here;
the transition is implemented below them."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.model import Side, Venue


class TrailingPhase(StrEnum):
    INACTIVE = "inactive"
    WAITING = "waiting"  # breakeven reached, waiting for activation
    ACTIVE = "active"
    TRIGGERED = "triggered"


@attrs.frozen(kw_only=True)
class TrailingParams:
    activation_percent: Decimal = Decimal("1.5")
    callback_percent: Decimal = Decimal("0.5")
    breakeven_percent: Decimal | None = None
    min_position_age_minutes: int | None = None
    rate_limit_seconds: int = 60
    min_improvement_percent: Decimal = Decimal("0.1")
    emergency_improvement_percent: Decimal = Decimal("1.0")


@attrs.frozen(kw_only=True)
class TrailingState:
    """What a position's trailing stop knows; persisted on every change, restored on start."""

    position_id: str
    venue: Venue
    symbol: str
    side: Side
    entry_price: Decimal
    quantity: Decimal
    opened_at: datetime
    phase: TrailingPhase = TrailingPhase.INACTIVE
    best_price: Decimal | None = None
    stop_price: Decimal | None = None
    activated_at: datetime | None = None
    update_count: int = 0
    last_update_at: datetime | None = None
