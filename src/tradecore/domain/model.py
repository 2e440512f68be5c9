"""Basic vocabulary: venues, position sides, order sides."""

import re
from collections.abc import Iterator
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from tradecore.domain.errors import DomainError

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class _Venues(type):
    """The metaclass that makes `Venue` iterable over the venues known so far."""

    _known: dict[str, "Venue"]

    def __iter__(cls) -> Iterator["Venue"]:
        return iter(tuple(cls._known.values()))

    def __len__(cls) -> int:
        return len(cls._known)

    def __contains__(cls, value: object) -> bool:
        return isinstance(value, str) and value in cls._known

    # What the StrEnum it was offered, so `Venue["BYBIT"]` keeps working.
    def __getitem__(cls, name: str) -> "Venue":
        """The venue by its member name (`Venue["BINANCE"]`); KeyError naming the known ones."""
        found = cls.__members__.get(name)
        if found is None:
            raise KeyError(f"{name!r}: known venues are {', '.join(cls.__members__)}")
        return found

    @property
    def __members__(cls) -> "MappingProxyType[str, Venue]":
        """Member name -> venue, as an enum's `__members__`."""
        return MappingProxyType({venue.name: venue for venue in cls._known.values()})


class Venue(str, metaclass=_Venues):
    """A venue's name: an open set of canonical strings.

    `Venue("binance") is Venue.BINANCE`; a name nobody registered is a `ValueError` (`parse`
    gives a `DomainError` listing the known ones). A venue module adds its own with
    `Venue.register("name")`, so a venue is added without editing the domain. Each name has
    one instance, so `is` compares venues, and a pickled venue unpickles to that instance.
    """

    __slots__ = ()
    _known: ClassVar[dict[str, "Venue"]] = {}
    BINANCE: ClassVar["Venue"]
    BYBIT: ClassVar["Venue"]

    def __new__(cls, value: object) -> "Venue":
        known = cls._known.get(value) if isinstance(value, str) else None
        if known is None:
            raise ValueError(f"{value!r} is not a known venue; known: {_listing()}")
        return known

    @classmethod
    def register(cls, name: str) -> "Venue":
        """The venue called `name`, made known if it was not (calling it again is harmless)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"a venue's name is lower-case text without spaces, not {name!r}")
        known = cls._known.get(name)
        if known is None:
            known = str.__new__(cls, name)
            cls._known[name] = known
        return known

    @classmethod
    def parse(cls, raw: str) -> "Venue":
        """A venue from user input (any case, surrounding spaces), or a clear refusal."""
        name = raw.strip().lower() if isinstance(raw, str) else raw
        try:
            return cls(name)
        except ValueError:
            raise DomainError(f"unknown exchange {raw!r}; expected one of: {_listing()}") from None

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper()

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"<Venue.{self.name}: {self.value!r}>"

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_venue, (self.value,))


def _venue(name: str) -> Venue:
    """Unpickle a venue: the process that pickled it knew it, so this one knows it too."""
    return Venue.register(name)


def _listing() -> str:
    return ", ".join(v.value for v in Venue)


Venue.BINANCE = Venue.register("binance")
Venue.BYBIT = Venue.register("bybit")


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
