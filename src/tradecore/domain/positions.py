"""The position lifecycle and who owns its stop.

An open is a persisted state machine: `PENDING_ENTRY -> ENTRY_PLACED -> PENDING_SL -> ACTIVE`,
then `CLOSING -> CLOSED`; an open that cannot complete ends `FAILED` (nothing was filled)
or `ROLLED_BACK` (the fill was closed again). Illegal transitions are refused.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.domain.errors import IllegalTransition
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import ZERO


class PositionState(StrEnum):
    PENDING_ENTRY = "pending_entry"
    ENTRY_PLACED = "entry_placed"
    PENDING_SL = "pending_sl"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"

    @property
    def is_opening(self) -> bool:
        """An open operation is in flight: nothing else may touch the symbol's orders."""
        return self in _OPENING

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open_on_venue(self) -> bool:
        """The venue may hold a position for it (from the entry until it is closed)."""
        return self in (
            PositionState.ENTRY_PLACED,
            PositionState.PENDING_SL,
            PositionState.ACTIVE,
            PositionState.CLOSING,
        )


_OPENING = frozenset(
    {PositionState.PENDING_ENTRY, PositionState.ENTRY_PLACED, PositionState.PENDING_SL}
)
_TERMINAL = frozenset({PositionState.CLOSED, PositionState.FAILED, PositionState.ROLLED_BACK})

TRANSITIONS: Mapping[PositionState, frozenset[PositionState]] = {
    PositionState.PENDING_ENTRY: frozenset({PositionState.ENTRY_PLACED, PositionState.FAILED}),
    PositionState.ENTRY_PLACED: frozenset(
        {PositionState.PENDING_SL, PositionState.FAILED, PositionState.ROLLED_BACK}
    ),
    PositionState.PENDING_SL: frozenset(
        {PositionState.ACTIVE, PositionState.ROLLED_BACK, PositionState.CLOSED}
    ),
    PositionState.ACTIVE: frozenset({PositionState.CLOSING, PositionState.CLOSED}),
    PositionState.CLOSING: frozenset({PositionState.ACTIVE, PositionState.CLOSED}),
    PositionState.CLOSED: frozenset(),
    PositionState.FAILED: frozenset(),
    PositionState.ROLLED_BACK: frozenset(),
}


class StopOwner(StrEnum):
    """The component that currently decides where a position's stop goes."""

    INITIAL = "initial"
    TRAILING = "trailing"
    PROTECTION = "protection"
    AGED = "aged"


def check_transition(current: PositionState, target: PositionState) -> None:
    """Raise IllegalTransition unless `current -> target` is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise IllegalTransition(
            f"a position cannot go from {current.value} to {target.value} "
            f"(allowed from {current.value}: {allowed})"
        )


@attrs.frozen(kw_only=True, eq=False)
class Position:
    """A position tradecore opened or adopted. Compared by id; changed by `advance`/`evolve`.

    `id` is also the correlation id of its open operation and the root of its
    deterministic client order ids.
    """

    id: str
    venue: Venue
    symbol: str
    side: Side
    state: PositionState
    requested_quantity: Decimal
    created_at: datetime
    quantity: Decimal = ZERO  # filled quantity currently held
    entry_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_order_id: str | None = None
    stop_owner: StopOwner | None = None
    signal_id: str | None = None
    wave: datetime | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    exit_price: Decimal | None = None
    realized_pnl: Decimal | None = None
    close_reason: str | None = None
    adopted: bool = False  # found on the venue, not opened by tradecore
    version: int = 0
    # from the venue's fills and funding once closed (domain.pnl); None until settled
    fees: Decimal | None = None
    funding: Decimal | None = None

    @property
    def settled(self) -> bool:
        """Its exit price, fees, funding and realized PnL are journaled."""
        return self.realized_pnl is not None and self.fees is not None

    @property
    def awaits_settlement(self) -> bool:
        """Closed (or rolled back) after something filled, its figures not journaled yet."""
        return (
            self.state in (PositionState.CLOSED, PositionState.ROLLED_BACK)
            and self.opened_at is not None
            and not self.settled
        )

    def advance(self, target: PositionState, **changes: object) -> "Position":
        """The position in state `target` (with `changes`), or IllegalTransition."""
        check_transition(self.state, target)
        return attrs.evolve(self, state=target, version=self.version + 1, **changes)  # type: ignore[arg-type]

    def with_stop(
        self, *, price: Decimal | None, order_id: str | None, owner: StopOwner | None
    ) -> "Position":
        return attrs.evolve(
            self,
            stop_price=price,
            stop_order_id=order_id,
            stop_owner=owner,
            version=self.version + 1,
        )


class OperationKind(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    REPLACE_STOP = "replace_stop"
    AGED_EXIT = "aged_exit"


@attrs.frozen(kw_only=True)
class Operation:
    """A multi-step venue operation that is in flight until `finished_at` is set.

    Reconciliation never touches the orders listed in `client_order_ids` of an operation
    in flight, nor the position it concerns.
    """

    id: str
    kind: OperationKind
    venue: Venue
    symbol: str
    position_id: str | None
    started_at: datetime
    client_order_ids: tuple[str, ...] = ()
    finished_at: datetime | None = None
    outcome: str | None = None
    # A stop replacement's level: what a restart takes for the bot's last stop when it
    # cannot look the new order up (it may stand, or have stood)
    target_price: Decimal | None = None

    @property
    def in_flight(self) -> bool:
        return self.finished_at is None
