"""Basic vocabulary: venues, position sides, order sides."""

from enum import StrEnum

from tradecore.domain.errors import DomainError


class Venue(StrEnum):
    BINANCE = "binance"
    BYBIT = "bybit"

    @classmethod
    def parse(cls, raw: str) -> "Venue":
        try:
            return cls(raw.strip().lower())
        except ValueError:
            allowed = ", ".join(v.value for v in cls)
            raise DomainError(f"unknown exchange {raw!r}; expected one of: {allowed}") from None


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> "OrderSide":
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class Side(StrEnum):
    """The side of a position."""

    LONG = "long"
    SHORT = "short"

    @property
    def entry(self) -> OrderSide:
        """The order side that opens (or increases) a position of this side."""
        return OrderSide.BUY if self is Side.LONG else OrderSide.SELL

    @property
    def exit(self) -> OrderSide:
        """The order side that reduces or closes a position of this side."""
        return OrderSide.SELL if self is Side.LONG else OrderSide.BUY

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: profit per unit is `sign * (price - entry)`."""
        return 1 if self is Side.LONG else -1

    @classmethod
    def from_action(cls, action: str) -> "Side":
        """A signal's action: BUY opens a long, SELL opens a short."""
        normalised = action.strip().upper() if isinstance(action, str) else action
        if normalised == "BUY":
            return cls.LONG
        if normalised == "SELL":
            return cls.SHORT
        raise DomainError(f"action must be BUY or SELL, got {action!r}")
