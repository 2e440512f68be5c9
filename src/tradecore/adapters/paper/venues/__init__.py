"""One dialect per venue: what the simulated venue refuses, with which code, and what it can do.

The engine (validation, matching, orchestration) is the same for every venue and never asks a
venue's name; it asks the account's `PaperDialect`. A dialect holds the venue's facts (error
texts and codes, caps, capabilities, fees, id forms, its markets) and the few answers whose
shape depends on the request (a refusal naming the offending field, "not modified" forms).
The base class answers each of those with the dialect's own error table; a venue overrides
only where its real answer differs (`binance.py`, `bybit.py`). Adding a venue is one module:
`Venue.register("name")`, a dialect, `register(dialect)` (docs/extending.md).
"""

from collections.abc import Iterator, Mapping
from decimal import Decimal

import attrs

from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import (
    RETRYABLE_REASONS,
    Applied,
    Capabilities,
    Rejected,
    RejectReason,
)

R = RejectReason


@attrs.frozen(kw_only=True)
class VenueRejection:
    """One refusal a venue answers and the ccxt adapter maps: the reason, code and text."""

    reason: RejectReason
    code: str
    message: str


def catalogue(*rows: tuple[RejectReason, str, str]) -> tuple[VenueRejection, ...]:
    return tuple(VenueRejection(reason=r, code=c, message=m) for r, c, m in rows)


class _Blank(dict[str, object]):
    """Template values; a field a message names but the caller did not give prints as '?'."""

    def __missing__(self, key: str) -> str:
        return "?"


@attrs.frozen(kw_only=True)
class PaperDialect:
    """The rules of one venue that the simulated engine follows."""

    venue: Venue
    capabilities: Capabilities
    # reason -> (code, message template): the refusal the venue answers when nothing more
    # specific is said below
    errors: Mapping[RejectReason, tuple[str | None, str]]
    # every refusal the venue answers and the ccxt adapter maps, for simulators to play
    rejections: tuple[VenueRejection, ...] = ()
    # the markets a simulated account of this venue trades by default
    markets: tuple[MarketRules, ...] = ()
    # closePosition=true stops, one per direction (Binance)
    close_position_stops: bool = False
    # a closed order's client id may be used again (else: any id used before is refused)
    client_ids_free_once_closed: bool = False
    # create answers with an acknowledgement only: the order's state is read back, and a
    # look-up may not list it yet (the engine's `listing_lag`)
    acknowledges_only: bool = False
    taker_fee: Decimal = Decimal("0.0005")
    order_id_start: int = 0
    # leverage is a whole number (else any value with the venue's steps up to the maximum)
    whole_leverage: bool = False

    @property
    def conditional_cap(self) -> int | None:
        """Open conditional orders allowed, per account or per symbol (None: no cap)."""
        return self.capabilities.max_conditional_orders

    @property
    def conditional_cap_per_symbol(self) -> bool:
        return self.capabilities.conditional_cap_per_symbol

    def refusal(
        self,
        reason: RejectReason,
        *,
        code: str | None = None,
        message: str | None = None,
        **detail: object,
    ) -> Rejected:
        """The venue's rejection for `reason`, its message filled in with `detail`."""
        default_code, template = self.errors.get(reason, (None, "{what}"))
        text = message if message is not None else template.format_map(_Blank(detail))
        return Rejected(
            reason=reason,
            message=text,
            retryable=reason in RETRYABLE_REASONS,
            code=code if code is not None else default_code,
        )

    def new_order_id(self, number: int) -> str:
        """The venue's id for the account's `number`-th order (integers unless overridden)."""
        return str(self.order_id_start + number)

    # ------------------------------------------------------------- refusals of bad input

    def invalid_side(self, side: object) -> Rejected:
        return self.refusal(R.OTHER, what=f"Invalid side {side!r}.")

    def quantity_unreadable(self) -> Rejected:
        """Not a finite number."""
        return self.refusal(R.INVALID_QUANTITY)

    def quantity_too_large(self) -> Rejected:
        return self.refusal(R.INVALID_QUANTITY)

    def quantity_too_precise(self) -> Rejected:
        """More decimals than the step has."""
        return self.refusal(R.INVALID_QUANTITY)

    def quantity_off_step(self) -> Rejected:
        return self.refusal(R.INVALID_QUANTITY)

    def quantity_below_minimum(self) -> Rejected:
        return self.refusal(R.INVALID_QUANTITY)

    def price_unreadable(self, field: str) -> Rejected:
        """Not a finite number; `field` is the request's name for it (price, stopPrice, …)."""
        return self.refusal(R.INVALID_PRICE, field=field, value="?", tick="?")

    def price_not_positive(self, field: str, *, stop: bool) -> Rejected:
        return self.price_unreadable(field)

    def price_too_large(self, field: str, *, stop: bool) -> Rejected:
        return self.price_unreadable(field)

    def price_off_tick(
        self, field: str, price: Decimal, tick: Decimal, *, too_precise: bool
    ) -> Rejected:
        return self.refusal(R.INVALID_PRICE, field=field, value=price, tick=tick)

    def invalid_client_id(self) -> Rejected:
        return self.refusal(R.OTHER, what="client order id is not valid")

    def position_index_refused(self, position_idx: int) -> Rejected | None:
        """A position index the account's one-way mode refuses (None: accepted)."""
        return None

    # ------------------------------------------------------------- refusals of the request

    def reduce_only_without_position(self) -> Rejected | None:
        """A reduce-only order with no position at all, if the venue says so in its own words
        (None: refused like any reduce-only order that would increase the position)."""
        return None

    def would_trigger(self, side: OrderSide, trigger: Decimal, mark: Decimal) -> Rejected:
        """A conditional order of `side` whose trigger the mark has already passed."""
        return self.refusal(R.WOULD_TRIGGER_IMMEDIATELY, trigger=trigger, mark=mark)

    def position_stop_would_trigger(self, side: Side, trigger: Decimal, mark: Decimal) -> Rejected:
        """A position-attached stop for a position of `side` past the mark."""
        return self.would_trigger(side.exit, trigger, mark)

    def stop_unchanged(self) -> Rejected:
        """An amend that moves a stop to the trigger it has."""
        return self.refusal(R.NOT_MODIFIED)

    def leverage_unchanged(self) -> Applied | Rejected:
        """A leverage change to the leverage the symbol has."""
        return self.refusal(R.NOT_MODIFIED)

    def margin_mode_unchanged(self) -> Rejected:
        """A margin-mode change to the mode the symbol has."""
        return self.refusal(R.NOT_MODIFIED)


class _Registry(Mapping[Venue, PaperDialect]):
    """The dialects by venue: the built-in ones, and any a venue module registers."""

    def __init__(self) -> None:
        self._dialects: dict[Venue, PaperDialect] = {}

    def __getitem__(self, venue: Venue) -> PaperDialect:
        try:
            return self._dialects[venue]
        except KeyError:
            known = ", ".join(v.value for v in self._dialects)
            raise KeyError(f"no paper dialect for {venue!r}; registered: {known}") from None

    def __iter__(self) -> Iterator[Venue]:
        return iter(tuple(self._dialects))

    def __len__(self) -> int:
        return len(self._dialects)

    def add(self, dialect: PaperDialect) -> PaperDialect:
        present = self._dialects.get(dialect.venue)
        if present is not None and present != dialect:
            raise ValueError(f"{dialect.venue.value} already has a different paper dialect")
        self._dialects[dialect.venue] = dialect
        return dialect


DIALECTS = _Registry()


def register(dialect: PaperDialect) -> PaperDialect:
    """Make `dialect` the simulated venue of its `venue` (registering it again is harmless)."""
    return DIALECTS.add(dialect)


def dialect_for(venue: Venue) -> PaperDialect:
    return DIALECTS[venue]


def market(symbol: str, tick: str, step: str, min_qty: str, notional: str, lev: int) -> MarketRules:
    """A paper market's rules from its figures as the venue lists them (strings: exact)."""
    return MarketRules(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_quantity=Decimal(min_qty),
        min_notional=Decimal(notional),
        max_leverage=Decimal(lev),
    )


from tradecore.adapters.paper.venues.binance import BINANCE  # noqa: E402
from tradecore.adapters.paper.venues.bybit import BYBIT  # noqa: E402

__all__ = [
    "BINANCE",
    "BYBIT",
    "DIALECTS",
    "PaperDialect",
    "VenueRejection",
    "catalogue",
    "dialect_for",
    "register",
]
