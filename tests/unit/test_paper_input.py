"""No input makes the simulated venue raise: garbage is a rejection with the venue's reason."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.paper import BINANCE, BYBIT, DEFAULT_MARKS, VenueEngine, default_markets
from tradecore.domain.errors import InvalidNumber
from tradecore.domain.model import OrderSide
from tradecore.domain.numbers import to_decimal
from tradecore.ports.exchange import Accepted, Rejected, RejectReason

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from([Decimal("1E+999999"), Decimal("1E-999999"), Decimal("sNaN"), [1], {}]),
)
NUMBERISH = st.one_of(
    ANYTHING,
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4),
)
SYMBOLS = st.one_of(st.sampled_from(["BTCUSDT", "ETHUSDT", "", "btcusdt", "NOPE"]), ANYTHING)
SIDES = st.one_of(st.sampled_from([OrderSide.BUY, OrderSide.SELL, "sell", "SIDEWAYS"]), ANYTHING)
CLIENT_IDS = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["tc-a-e0", "x" * 37]))


def engine(profile_name: str) -> VenueEngine:
    profile = BINANCE if profile_name == "binance" else BYBIT
    return VenueEngine(
        profile,
        now=VirtualClock().now,
        markets=default_markets(profile.venue),
        marks=DEFAULT_MARKS,
    )


COMMAND = st.tuples(
    st.sampled_from(["market", "limit", "stop", "position_stop", "amend", "cancel"]),
    SYMBOLS,
    SIDES,
    NUMBERISH,
    NUMBERISH,
    CLIENT_IDS,
    st.booleans(),
)


def run(venue: VenueEngine, command: tuple) -> object:  # type: ignore[type-arg]
    kind, symbol, side, amount, price, cid, flag = command
    if kind == "market":
        return venue.place_market(symbol, side, amount, client_order_id=cid, reduce_only=flag)
    if kind == "limit":
        return venue.place_limit(symbol, side, amount, price, client_order_id=cid, reduce_only=flag)
    if kind == "stop":
        return venue.place_stop(symbol, side, amount, price, client_order_id=cid)
    if kind == "position_stop":
        return venue.set_position_stop(symbol, price)
    if kind == "amend":
        return venue.amend(symbol, cid, trigger_price=price, price=amount)  # type: ignore[arg-type]
    return venue.cancel(symbol, side)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["binance", "bybit"]), st.lists(COMMAND, min_size=1, max_size=8))
def test_any_command_with_any_input_is_accepted_or_rejected_never_raised(
    profile_name: str, commands: list
) -> None:
    venue = engine(profile_name)
    for command in commands:
        outcome = run(venue, command)
        assert isinstance(outcome, Accepted | Rejected)
        if isinstance(outcome, Rejected):
            assert outcome.message


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["binance", "bybit"]), ANYTHING)
def test_any_quantity_that_is_not_a_positive_finite_number_is_rejected(
    profile_name: str, quantity: object
) -> None:
    venue = engine(profile_name)
    outcome = venue.place_market("BTCUSDT", OrderSide.BUY, quantity, client_order_id="tc-q-e0")
    try:
        as_number: Decimal | None = to_decimal(quantity, name="quantity")
    except InvalidNumber:
        as_number = None
    if as_number is None or as_number <= 0:
        assert isinstance(outcome, Rejected)
        assert outcome.reason is RejectReason.INVALID_QUANTITY
