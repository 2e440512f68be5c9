"""The ccxt adapter asks the venue's registered dialect for everything a venue decides.

docs/extending.md: a venue is a dialect module that registers itself. These tests hold the
built-in dialects to the whole `CcxtDialect` protocol, and show that the adapter's answers
follow whichever dialect is registered for a venue (a toy built as the page says), so a new
venue's module is all a venue needs on the ccxt side.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

import attrs
import ccxt.async_support as ccxt
import pytest

from tradecore.adapters.ccxt import CAPABILITIES, PROFILES, build_client, command_outcome
from tradecore.adapters.ccxt import venues as registry
from tradecore.adapters.ccxt.exchange import CcxtExchange
from tradecore.adapters.ccxt.limits import VENUE_LIMITS
from tradecore.adapters.ccxt.venues import CcxtDialect, dialect_for, dialects
from tradecore.adapters.ccxt.venues.bybit import BybitDialect
from tradecore.adapters.clock import VirtualClock
from tradecore.domain.model import Venue
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Rejected, RejectReason

# the venues tradecore ships (a test or a doc may register more, e.g. a paper-only toy)
BUILT_IN = (Venue.BINANCE, Venue.BYBIT)
MEMBERS = sorted(
    name
    for klass in CcxtDialect.__mro__
    if klass is not object and klass.__name__ != "Protocol" and klass.__name__ != "Generic"
    for name in (*getattr(klass, "__annotations__", {}), *vars(klass))
    if not name.startswith("_")
)


class ToyDialect(BybitDialect):
    """A venue on Bybit's v5 API with one code and one cap of its own (docs/extending.md)."""

    display_name = "Toy linear"
    codes: Mapping[str, RejectReason] = MappingProxyType(
        {**BybitDialect.codes, "990001": RejectReason.SYMBOL_UNAVAILABLE}
    )
    profile = attrs.evolve(
        BybitDialect.profile,
        capabilities=attrs.evolve(BybitDialect.profile.capabilities, max_conditional_orders=3),
    )

    def reason_for(self, code: str, message: str) -> RejectReason | None:
        return self.codes.get(code) or super().reason_for(code, message)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> ToyDialect:
    """The toy registered in Bybit's place for one test (a third `Venue` comes with the
    paper engine's split)."""
    dialect_for(Venue.BYBIT)  # the built-in modules are loaded first, so the toy stays
    toy = ToyDialect()
    monkeypatch.setitem(registry._DIALECTS, Venue.BYBIT, toy)
    return toy


def _refusal(code: str, message: str) -> Exception:
    """What ccxt's bybit raises for a v5 answer with this retCode."""
    body = json.dumps({"retCode": int(code), "retMsg": message, "result": {}})
    return ccxt.BadRequest(f"bybit {body}")


@pytest.mark.parametrize("venue", BUILT_IN)
def test_every_built_in_venue_has_a_dialect_with_every_member(venue: Venue) -> None:
    dialect = dialect_for(venue)
    assert dialect.venue is venue
    missing = [name for name in MEMBERS if not hasattr(dialect, name)]
    assert missing == []
    assert dialect.profile.venue is venue


def test_the_venue_tables_are_read_from_the_registered_dialects() -> None:
    assert set(CAPABILITIES) == {dialect.venue for dialect in dialects()} >= set(BUILT_IN)
    for venue in CAPABILITIES:
        assert CAPABILITIES[venue] is dialect_for(venue).profile.capabilities
        assert PROFILES[venue] is dialect_for(venue).profile
        assert VENUE_LIMITS[venue] is dialect_for(venue).limits


def test_a_venue_without_a_dialect_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    dialect_for(Venue.BYBIT)
    monkeypatch.delitem(registry._DIALECTS, Venue.BYBIT)
    monkeypatch.setattr(registry, "BUILTIN", ())
    with pytest.raises(ValueError, match="no ccxt dialect for bybit"):
        dialect_for(Venue.BYBIT)
    with pytest.raises(KeyError):
        CAPABILITIES[Venue.BYBIT]


def test_a_refusal_code_is_read_by_the_registered_dialect(toy: ToyDialect) -> None:
    outcome = command_outcome(Venue.BYBIT, _refusal("990001", "symbol halted"))
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.code) == (RejectReason.SYMBOL_UNAVAILABLE, "990001")
    # the codes it inherits still mean what they meant
    known = command_outcome(Venue.BYBIT, _refusal("110001", "order not exists"))
    assert isinstance(known, Rejected) and known.reason is RejectReason.ORDER_NOT_FOUND


async def test_the_adapter_takes_its_capabilities_from_the_registered_dialect(
    toy: ToyDialect,
) -> None:
    client = build_client(Venue.BYBIT, api_key="k", secret="s")
    exchange = CcxtExchange(client, Venue.BYBIT, clock=VirtualClock())
    try:
        assert exchange.dialect is toy
        assert exchange.capabilities.max_conditional_orders == 3
        assert CAPABILITIES[Venue.BYBIT].max_conditional_orders == 3
    finally:
        await exchange.close()


async def test_a_fractional_leverage_is_refused_before_sending_where_the_venue_says_so() -> None:
    rules = MarketRules(
        symbol="BTCUSDT",
        tick_size=Decimal("0.1"),
        step_size=Decimal("0.001"),
        min_quantity=Decimal("0.001"),
        min_notional=Decimal("5"),
        max_leverage=Decimal("20"),
    )
    for venue in BUILT_IN:
        dialect = dialect_for(venue)
        client = build_client(venue, api_key="k", secret="s")
        try:
            call = dialect.set_leverage(client, "BTC/USDT:USDT", Decimal("2.5"), rules)
        finally:
            await client.close()
        refused = isinstance(call, Rejected) and call.reason is RejectReason.INVALID_LEVERAGE
        assert refused is dialect.whole_number_leverage, venue
