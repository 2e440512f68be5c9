"""The venues' refusal codes: the paper venue's catalogue and the ccxt adapter's table agree.

A simulator injects "every rejection code the adapters map" from `Profile.rejections`; these
tests hold that catalogue to what the real ccxt client raises for the same answer and to
what `tradecore.adapters.ccxt.errors` makes of it, so a refusal the simulator plays is the
refusal the bot meets on the venue.
"""

import json
from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from tradecore.adapters.ccxt.errors import command_outcome
from tradecore.adapters.ccxt.venues import dialect_for
from tradecore.adapters.paper import BINANCE, BYBIT, Profile
from tradecore.domain.model import OrderSide, Side, Venue
from tradecore.ports.exchange import RETRYABLE_REASONS, Rejected
from tradecore.testing import FakeVenue, Fault, Op

PROFILES = {"binance": BINANCE, "bybit": BYBIT}


def _raised_by_ccxt(venue: Venue, code: str, message: str) -> Exception:
    """What the real ccxt client raises for this refusal, through its own error handling."""
    if venue is Venue.BINANCE:
        client: ccxt.Exchange = ccxt.binanceusdm()
        url = "https://fapi.binance.com/fapi/v1/order"
        region = code == "451"  # HTTP 451 with code 0: Binance's region block
        body = json.dumps({"code": 0 if region else int(code), "msg": message})
        status = 451 if region else 400
    else:
        client = ccxt.bybit()
        url = "https://api.bybit.com/v5/order/create"
        body = json.dumps({"retCode": int(code), "retMsg": message, "result": {}})
        status = 200
    try:
        client.handle_errors(status, "", url, "POST", {}, body, json.loads(body), {}, "")
        client.handle_http_status_code(status, "", url, "POST", body)
    except ccxt.BaseError as error:
        return error
    raise AssertionError(f"ccxt raised nothing for {body}")


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_refusal_in_the_catalogue_reads_back_as_the_same_reason_through_ccxt(
    name: str,
) -> None:
    profile = PROFILES[name]
    assert profile.rejections, "the catalogue is empty"
    for rejection in profile.rejections:
        error = _raised_by_ccxt(profile.venue, rejection.code, rejection.message)
        outcome = command_outcome(profile.venue, error)
        assert isinstance(outcome, Rejected), (rejection, outcome)
        assert (outcome.reason, outcome.code) == (rejection.reason, rejection.code), error
        assert outcome.retryable is (rejection.reason in RETRYABLE_REASONS), rejection


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_code_the_adapter_maps_is_in_the_catalogue(name: str) -> None:
    profile = PROFILES[name]
    catalogued = {(r.code, r.reason) for r in profile.rejections}
    for code, reason in dialect_for(profile.venue).codes.items():
        assert (code, reason) in catalogued, f"{profile.venue} {code} ({reason}) is missing"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_paper_venues_own_answers_are_catalogued_refusals(name: str) -> None:
    profile: Profile = PROFILES[name]
    catalogued = {(r.code, r.reason) for r in profile.rejections}
    for reason in profile.errors:
        refusal = profile.refusal(reason)
        if refusal.code is not None:
            assert (refusal.code, refusal.reason) in catalogued, refusal


@pytest.mark.parametrize("name", sorted(PROFILES))
async def test_a_simulator_can_inject_each_catalogued_refusal_with_its_code_and_text(
    name: str,
) -> None:
    profile = PROFILES[name]
    venue = FakeVenue(profile)
    await venue.open_position("BTCUSDT", Side.LONG, "0.01")
    quantity = Decimal("0.01")
    for n, rejection in enumerate(profile.rejections):
        venue.inject(
            Fault.reject(
                rejection.reason, Op.STOP_ORDER, code=rejection.code, message=rejection.message
            )
        )
        outcome = await venue.exchange.create_stop_order(
            "BTCUSDT", OrderSide.SELL, quantity, Decimal(40000 + n), client_order_id=f"tc-c-s{n}"
        )
        assert isinstance(outcome, Rejected), outcome
        assert (outcome.reason, outcome.code, outcome.message) == (
            rejection.reason,
            rejection.code,
            rejection.message,
        )
