"""One dialect per venue: everything the ccxt adapter must know of a venue, in its own module.

The generic adapter (`exchange.py`, `errors.py`, `margin.py`, `limits.py`, `venue_check.py`)
never asks which venue it talks to; it asks the venue's `CcxtDialect`, found by
`dialect_for(venue)`. A venue is one module here (`binance.py`, `bybit.py`) that builds its
dialect and calls `register(...)`; docs/extending.md shows how to add one.

Behaviour that needs the adapter's transport (a read-back, a look-up on the endpoint an order
lives on) is a dialect method taking the `CcxtExchange`; it uses the adapter's transport
helpers (`ex._call`, `ex._query`, `ex._command`, `ex._maybe`, `ex._proven`, `ex.client`, and
`ex._algos`, the conditional orders as last seen), never another venue's code.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from tradecore.domain.model import Venue

if TYPE_CHECKING:  # the dialect modules import these; a type needs no import at run time
    import ccxt.async_support as ccxt

    from tradecore.adapters.ccxt.exchange import CcxtExchange
    from tradecore.adapters.ccxt.limiter import VenueLimits
    from tradecore.adapters.ccxt.profiles import CcxtProfile
    from tradecore.adapters.ccxt.venue_check import VenueCheck
    from tradecore.domain.leverage import LeverageTier, MarginMode
    from tradecore.domain.orders import MarkCandle, Order
    from tradecore.domain.pnl import Fill, FundingPayment
    from tradecore.domain.precision import MarketRules
    from tradecore.ports.exchange import Capabilities, Outcome, RejectReason, SettingOutcome

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class CheckFacts:
    """Which corpus entries (src/tradecore/testing/corpus/<venue>/) each `venue-check` step
    proves on this venue (its own last check is the dialect's `own_check`)."""

    tiers: tuple[str, ...]
    leverage: tuple[str, ...]
    margin_mode: tuple[str, ...]
    unknown_client_id: tuple[str, ...]
    entry_read_back: tuple[str, ...]
    stop_and_take_profit: tuple[str, ...]
    entry_stop: tuple[str, ...] = ()  # a venue whose entry carries its stop (`entry_stop`)
    mark_candles: tuple[str, ...] = ()  # the mark's klines (a restart's trailing catch-up)


class CcxtDialect(Protocol):
    """What the ccxt adapter needs of one venue: its facts and its behaviour.

    Facts (data): `venue`, `display_name`, `profile` (capabilities, ccxt options, order and
    stop params, the refusal codes for mistakes refused before sending, readers of the raw
    JSON), `codes` (venue error code → the port's `RejectReason`), `execution_unknown_codes`
    (the venue's own "internal error, execution status unknown"), `clock_skew_codes` (the
    request's timestamp refused: resync the clock and resend), `already_done_codes` (a
    setting the venue says it already holds, answered as success), `limits` (the published
    rate-limit budgets and each request's weight), `has_testnet`, `whole_number_leverage`,
    `settings_in_one_answer`, `ip_ban_statuses`, `check_facts` (venue-check).
    Behaviour (methods): the rest, each documented below.
    """

    venue: Venue
    display_name: str  # as an operator reads it: "Binance USDⓈ-M"
    profile: CcxtProfile
    codes: Mapping[str, RejectReason]
    execution_unknown_codes: frozenset[str]
    clock_skew_codes: frozenset[str]
    already_done_codes: frozenset[str]
    limits: VenueLimits
    has_testnet: bool
    whole_number_leverage: bool  # the venue takes only whole leverages
    # one answer holds the symbol's leverage and margin mode (ccxt `fetch_margin_mode`'s
    # request): both reads share it, one request per symbol in flight
    settings_in_one_answer: bool
    # HTTP status -> the IP ban it means, with the ban's shortest length when no header says
    ip_ban_statuses: Mapping[int, timedelta]
    check_facts: CheckFacts

    # ------------------------------------------------------------ client
    def client_class(self, *, websockets: bool) -> type[ccxt.Exchange]:
        """ccxt's class for this venue (ccxt.pro's when websockets are wanted)."""
        ...

    def prepare_client(self, client: ccxt.Exchange) -> None:
        """Adjust a freshly built client (switch off calls the adapter never needs)."""
        ...

    # ------------------------------------------------------------ errors
    def reason_for(self, code: str, message: str) -> RejectReason | None:
        """The port's reason for the venue's code (and its text, where one code means many)."""
        ...

    # ------------------------------------------------------------ reading answers
    def read_order(self, info: Mapping[str, Any], *, conditional: bool = False) -> Order:
        """An order from the venue's raw JSON; `conditional` when listed as a stop."""
        ...

    async def market_rules(
        self, ex: CcxtExchange, markets: Mapping[str, Any]
    ) -> Sequence[MarketRules]:
        """Each linear USDT market's rules (tick, step, minimums, maximum leverage)."""
        ...

    # ------------------------------------------------------------ orders
    def listing_params(self, symbol: str | None, *, stops: bool) -> dict[str, Any]:
        """ccxt params listing the open plain (`stops=False`) or conditional orders."""
        ...

    async def placed(self, ex: CcxtExchange, symbol: str, raw: Mapping[str, Any]) -> Order:
        """The order as the venue holds it after a create, its state proven (read back)."""
        ...

    async def find_by_client_id(self, ex: CcxtExchange, unified: str, cid: str) -> Order | None:
        """An order by our client id, asking the endpoint its role letter names."""
        ...

    async def find_order(self, ex: CcxtExchange, unified: str, order_id: str) -> Order | None:
        """An order by the venue's id, or None when the venue has no such order."""
        ...

    async def read_amended(
        self, ex: CcxtExchange, symbol: str, order_id: str, raw: Mapping[str, Any]
    ) -> Order:
        """The order after an amend, from the answer or read back."""
        ...

    def amend_stop_params(self, trigger: str) -> dict[str, Any]:
        """ccxt params moving a resting stop's trigger in place (if `amend_stop`)."""
        ...

    def entry_stop_params(self, trigger: str) -> dict[str, Any]:
        """ccxt params by which an entry carries its stop-loss (if `entry_stop`)."""
        ...

    async def cancel(self, ex: CcxtExchange, symbol: str, order_id: str) -> Outcome:
        """Cancel the order on the endpoint it lives on; the cancelled order, proven."""
        ...

    def position_stop(
        self, client: ccxt.Exchange, symbol: str, trigger: str | None
    ) -> Awaitable[Any]:
        """Set (or, with None, remove) the position's own stop (if `position_stop`)."""
        ...

    # ------------------------------------------------------------ history, marks
    async def fills(self, ex: CcxtExchange, unified: str, start_ms: int) -> list[Fill]:
        """Every fill of the symbol from `start_ms` (the venue's paging followed)."""
        ...

    async def funding(
        self, ex: CcxtExchange, symbol: str, start_ms: int
    ) -> list[FundingPayment | None]:
        """Funding payments from `start_ms` (None for a row that is none)."""
        ...

    async def mark(self, ex: CcxtExchange, unified: str) -> Decimal:
        """The symbol's mark price by REST."""
        ...

    async def mark_candles(
        self, ex: CcxtExchange, symbol: str, since: datetime
    ) -> list[MarkCandle]:
        """The symbol's mark-price candles from `since` to now, oldest first (`candles`)."""
        ...

    def can_watch(self, client: ccxt.Exchange) -> bool:
        """Whether the client can stream marks."""
        ...

    async def watch_marks(self, client: ccxt.Exchange, unified: Sequence[str]) -> Mapping[str, Any]:
        """One update of the venue's mark stream (ccxt tickers, `info` carrying the mark)."""
        ...

    # ------------------------------------------------------------ leverage, margin mode
    def set_leverage(
        self, client: ccxt.Exchange, unified: str, leverage: Decimal, rules: MarketRules
    ) -> Callable[[], Awaitable[Any]] | SettingOutcome:
        """The call that sets the leverage, or the venue's refusal before sending."""
        ...

    def read_leverage(self, raw: Mapping[str, Any]) -> Decimal:
        """The leverage in ccxt's `fetch_leverage` answer."""
        ...

    def read_margin_mode(self, info: Mapping[str, Any]) -> MarginMode:
        """The margin mode in ccxt's `fetch_margin_mode` answer's `info`."""
        ...

    async def leverage_tiers(self, ex: CcxtExchange, symbol: str) -> Sequence[LeverageTier]:
        """The symbol's leverage (risk-limit) tiers, smallest notional first."""
        ...

    # ------------------------------------------------------------ venue-check
    async def own_check(
        self, check: VenueCheck, take_profit: Order | None, rules: MarketRules, mark: Decimal
    ) -> None:
        """The venue's own last `venue-check` step (after the stop and take-profit), its
        result recorded with `check.record` inside `check.attempt`."""
        ...


_DIALECTS: dict[Venue, CcxtDialect] = {}
# The venues tradecore ships; a third registers itself by importing its module (extending.md).
BUILTIN = ("tradecore.adapters.ccxt.venues.binance", "tradecore.adapters.ccxt.venues.bybit")


def register(dialect: CcxtDialect) -> CcxtDialect:
    """Make `dialect` the ccxt adapter's dialect for `dialect.venue`."""
    _DIALECTS[dialect.venue] = dialect
    return dialect


def _load_builtin() -> None:
    for module in BUILTIN:
        importlib.import_module(module)


def dialect_for(venue: Venue) -> CcxtDialect:
    """The registered dialect of `venue`."""
    if venue not in _DIALECTS:
        _load_builtin()
    try:
        return _DIALECTS[venue]
    except KeyError:
        known = ", ".join(str(v) for v in _DIALECTS)
        raise ValueError(f"no ccxt dialect for {venue!s}; registered: {known}") from None


def dialects() -> tuple[CcxtDialect, ...]:
    _load_builtin()
    return tuple(_DIALECTS.values())


class ByVenue(Mapping[Venue, T]):
    """A read-only view of one fact of every registered dialect, keyed by venue
    (`CAPABILITIES[venue]`, `PROFILES[venue]`, `VENUE_LIMITS[venue]`)."""

    def __init__(self, fact: Callable[[CcxtDialect], T]) -> None:
        self._fact = fact

    def __getitem__(self, venue: Venue) -> T:
        try:
            return self._fact(dialect_for(venue))
        except ValueError:
            raise KeyError(venue) from None

    def __iter__(self) -> Iterator[Venue]:
        return iter([dialect.venue for dialect in dialects()])

    def __len__(self) -> int:
        return len(dialects())


def capabilities_of(venue: Venue) -> Capabilities:
    return dialect_for(venue).profile.capabilities
