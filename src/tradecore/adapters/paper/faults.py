"""Fault injection by script: what the venue or the network does wrong, and when.

A `Fault` names what goes wrong (`kind`), on which operation and symbol it fires (None =
any), and how many times. The engine consumes the faults that are venue behaviour (a forced
rejection, a partial fill); the transport in front of it (the port adapter here, a loopback
HTTP server later) consumes the ones that are transport behaviour (a lost response, a
network error, a rate limit, a 5xx, a timeout).
"""

from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum

import attrs

from tradecore.ports.exchange import RejectReason


class Op(StrEnum):
    """The operations a fault can be aimed at."""

    MARKET_ORDER = "create_market_order"
    LIMIT_ORDER = "create_limit_order"
    STOP_ORDER = "create_stop_order"
    POSITION_STOP = "set_position_stop"
    AMEND = "amend_order"
    CANCEL = "cancel_order"
    FETCH_MARKETS = "load_markets"
    FETCH_BALANCE = "fetch_balance"
    FETCH_POSITIONS = "fetch_positions"
    FETCH_OPEN_ORDERS = "fetch_open_orders"
    FETCH_ORDER = "fetch_order_by_client_id"
    FETCH_MARK = "fetch_mark_price"
    FETCH_MARK_CANDLES = "fetch_mark_candles"
    FETCH_FILLS = "fetch_fills"
    FETCH_FUNDING = "fetch_funding"
    SET_LEVERAGE = "set_leverage"
    SET_MARGIN_MODE = "set_margin_mode"
    FETCH_LEVERAGE = "fetch_leverage"  # leverage, margin mode and tiers: the symbol's setup


COMMANDS = frozenset(
    {Op.MARKET_ORDER, Op.LIMIT_ORDER, Op.STOP_ORDER, Op.POSITION_STOP, Op.AMEND, Op.CANCEL}
)


class FaultKind(StrEnum):
    LOST_RESPONSE = "lost_response"  # the venue acted; the caller hears nothing -> Unknown
    TIMEOUT = "timeout"  # the request vanished before the venue; the caller cannot tell -> Unknown
    NETWORK_ERROR = "network_error"  # provably never sent (connect failed) -> retryable reject
    RATE_LIMIT = "rate_limit"  # -1003 / 10006, nothing done
    # a 5xx: to a command the execution status is unknown (Binance's docs: "could have been a
    # success"), so it is `Unknown`; `acted` says whether the venue did it; to a query, the
    # venue is unavailable
    SERVER_ERROR = "server_error"
    REJECT = "reject"  # the venue refuses with `reason`, nothing done
    PARTIAL_FILL = "partial_fill"  # a market order fills only `fill_ratio` of its quantity


TRANSPORT_KINDS = frozenset(
    {
        FaultKind.LOST_RESPONSE,
        FaultKind.TIMEOUT,
        FaultKind.NETWORK_ERROR,
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
    }
)


@attrs.frozen(kw_only=True)
class Fault:
    kind: FaultKind
    op: Op | None = None
    symbol: str | None = None
    times: int = 1
    reason: RejectReason | None = None
    fill_ratio: Decimal | None = None
    skip: int = 0  # let this many matching requests through before firing
    acted: bool = False  # SERVER_ERROR only: the venue executed the command before failing
    code: str | None = None  # REJECT only: the venue's code (default: the profile's for reason)
    message: str | None = None  # REJECT only: the venue's text (default: the profile's)

    def __attrs_post_init__(self) -> None:
        if self.times < 1:
            raise ValueError(f"a fault fires at least once, got times={self.times}")
        if self.skip < 0:
            raise ValueError(f"skip counts requests and cannot be negative, got {self.skip}")
        if self.kind is FaultKind.REJECT and self.reason is None:
            raise ValueError("a REJECT fault needs the reason the venue gives")
        if self.kind is FaultKind.PARTIAL_FILL and not (
            self.fill_ratio is not None and 0 <= self.fill_ratio < 1
        ):
            raise ValueError("a PARTIAL_FILL fault needs 0 <= fill_ratio < 1")
        if self.acted and self.kind is not FaultKind.SERVER_ERROR:
            raise ValueError("only a SERVER_ERROR fault can have acted=True")

    def matches(self, op: Op, symbol: str | None) -> bool:
        op_ok = self.op is None or self.op is op
        return op_ok and (self.symbol is None or symbol is None or self.symbol == symbol)

    @classmethod
    def lost_response(cls, op: Op | None = None, *, symbol: str | None = None) -> "Fault":
        return cls(kind=FaultKind.LOST_RESPONSE, op=op, symbol=symbol)

    @classmethod
    def timeout(cls, op: Op | None = None, *, symbol: str | None = None) -> "Fault":
        return cls(kind=FaultKind.TIMEOUT, op=op, symbol=symbol)

    @classmethod
    def network_error(
        cls, op: Op | None = None, *, symbol: str | None = None, times: int = 1
    ) -> "Fault":
        return cls(kind=FaultKind.NETWORK_ERROR, op=op, symbol=symbol, times=times)

    @classmethod
    def rate_limit(
        cls, op: Op | None = None, *, symbol: str | None = None, times: int = 1
    ) -> "Fault":
        return cls(kind=FaultKind.RATE_LIMIT, op=op, symbol=symbol, times=times)

    @classmethod
    def server_error(
        cls, op: Op | None = None, *, symbol: str | None = None, times: int = 1, acted: bool = False
    ) -> "Fault":
        """A 5xx answer; with `acted` the venue executed the command before answering it."""
        return cls(kind=FaultKind.SERVER_ERROR, op=op, symbol=symbol, times=times, acted=acted)

    @classmethod
    def reject(
        cls,
        reason: RejectReason,
        op: Op | None = None,
        *,
        symbol: str | None = None,
        times: int = 1,
        skip: int = 0,
        code: str | None = None,
        message: str | None = None,
    ) -> "Fault":
        """The venue refuses with `reason`; `code` and `message` default to the profile's
        (a simulator takes them from `Profile.rejections` to play every code)."""
        return cls(
            kind=FaultKind.REJECT,
            reason=reason,
            op=op,
            symbol=symbol,
            times=times,
            skip=skip,
            code=code,
            message=message,
        )

    @classmethod
    def partial_fill(cls, ratio: Decimal | str, *, symbol: str | None = None) -> "Fault":
        return cls(
            kind=FaultKind.PARTIAL_FILL,
            op=Op.MARKET_ORDER,
            symbol=symbol,
            fill_ratio=Decimal(ratio),
        )


@attrs.define
class _Armed:
    fault: Fault
    remaining: int
    skips: int = 0


class FaultPlan:
    """The script of faults still to fire, consumed first-in first-out per matching request."""

    def __init__(self) -> None:
        self._pending: list[_Armed] = []
        self.fired: list[tuple[Fault, Op, str | None]] = []
        # callables f(fault, op, symbol) called as a fault fires on a request (`symbol` is
        # the request's: None for an account-wide one such as fetch_positions)
        self.observers: list[Callable[[Fault, Op, str | None], None]] = []

    def add(self, *faults: Fault) -> None:
        for fault in faults:
            self._pending.append(_Armed(fault=fault, remaining=fault.times, skips=fault.skip))

    def clear(self) -> None:
        self._pending.clear()

    def remove(self, fault: Fault) -> None:
        """Disarm `fault` (a window of faults that ended) if it has not fired out yet."""
        self._pending = [armed for armed in self._pending if armed.fault is not fault]

    @property
    def pending(self) -> tuple[Fault, ...]:
        return tuple(armed.fault for armed in self._pending)

    def take(self, op: Op, symbol: str | None, kinds: frozenset[FaultKind]) -> Fault | None:
        """The next scripted fault of one of `kinds` for this request, consumed; or None."""
        if not self._pending:
            return None
        for armed in self._pending:
            if armed.fault.kind in kinds and armed.fault.matches(op, symbol):
                if armed.skips > 0:
                    armed.skips -= 1
                    continue
                armed.remaining -= 1
                if armed.remaining <= 0:
                    self._pending.remove(armed)
                self.fired.append((armed.fault, op, symbol))
                for observer in self.observers:
                    observer(armed.fault, op, symbol)
                return armed.fault
        return None
