"""Every ccxt exception becomes the outcome the SPEC's table says; the venue's code wins."""

import aiohttp
import ccxt.async_support as ccxt
import pytest
from aiohttp.client_reqrep import ConnectionKey

from tradecore.adapters.ccxt.errors import (
    ServerFailure,
    command_outcome,
    query_failure,
    watch_server_failures,
)
from tradecore.domain.model import Venue
from tradecore.ports.exchange import Rejected, RejectReason, Unknown

R = RejectReason


def _with_cause(error: Exception, cause: BaseException) -> Exception:
    error.__cause__ = cause
    return error


def _connect_refused() -> BaseException:
    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


CLASS_TABLE = [
    (ccxt.RateLimitExceeded("x"), R.RATE_LIMITED, True),
    (ccxt.DDoSProtection("x"), R.RATE_LIMITED, True),
    (ccxt.ExchangeNotAvailable("binanceusdm GET 503"), R.VENUE_UNAVAILABLE, True),
    (ccxt.OnMaintenance("x"), R.VENUE_UNAVAILABLE, True),
    (ccxt.OperationFailed("x"), R.VENUE_UNAVAILABLE, True),
    (ccxt.InvalidNonce("x"), R.OTHER, True),
    (ccxt.OrderNotFound("x"), R.ORDER_NOT_FOUND, False),
    (ccxt.OrderImmediatelyFillable("x"), R.WOULD_TRIGGER_IMMEDIATELY, False),
    (ccxt.DuplicateOrderId("x"), R.DUPLICATE_CLIENT_ID, False),
    (ccxt.InsufficientFunds("x"), R.INSUFFICIENT_BALANCE, False),
    (ccxt.BadSymbol("x"), R.UNKNOWN_SYMBOL, False),
    (ccxt.RestrictedLocation("x"), R.REGION_RESTRICTED, False),
    (ccxt.AuthenticationError("x"), R.AUTHENTICATION, False),
    (ccxt.PermissionDenied("x"), R.AUTHENTICATION, False),
    (ccxt.AccountSuspended("x"), R.AUTHENTICATION, False),
    (ccxt.NotSupported("x"), R.NOT_SUPPORTED, False),
    (ccxt.InvalidOrder("x"), R.OTHER, False),
    (ccxt.BadRequest("x"), R.OTHER, False),
    (ccxt.ExchangeError("x"), R.OTHER, False),
]


@pytest.mark.parametrize(("error", "reason", "retryable"), CLASS_TABLE, ids=lambda v: str(v)[:30])
def test_each_ccxt_error_class_is_a_rejection_with_its_reason_and_retry_advice(
    error: Exception, reason: RejectReason, retryable: bool
) -> None:
    outcome = command_outcome(Venue.BINANCE, error)
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.retryable) == (reason, retryable)


@pytest.mark.parametrize(
    "error",
    [
        ccxt.RequestTimeout("binanceusdm POST /fapi/v1/order"),
        _with_cause(ccxt.ExchangeNotAvailable("x"), aiohttp.ServerDisconnectedError()),
        ccxt.BadResponse("x"),
        ccxt.NullResponse("x"),
        ccxt.NetworkError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_order_whose_answer_was_lost_is_unknown_and_keeps_its_client_id(
    error: Exception,
) -> None:
    outcome = command_outcome(Venue.BYBIT, error, client_order_id="tc-op1-s0")
    assert isinstance(outcome, Unknown)
    assert outcome.client_order_id == "tc-op1-s0"


def test_a_refused_connection_never_sent_anything_so_retrying_is_safe() -> None:
    error = _with_cause(ccxt.ExchangeNotAvailable("x"), _connect_refused())
    outcome = command_outcome(Venue.BINANCE, error, client_order_id="tc-op1-s0")
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.retryable) == (R.NETWORK_ERROR, True)


VENUE_TABLE = [
    (
        Venue.BINANCE,
        ccxt.InvalidOrder,
        '{"code":-2021,"msg":"Order would immediately trigger."}',
        R.WOULD_TRIGGER_IMMEDIATELY,
        "-2021",
    ),
    (
        Venue.BINANCE,
        ccxt.BadRequest,
        '{"code":-4140,"msg":"Invalid symbol status for opening position."}',
        R.SYMBOL_UNAVAILABLE,
        "-4140",
    ),
    (
        Venue.BINANCE,
        ccxt.OrderNotFound,
        '{"code":-2011,"msg":"Unknown order sent."}',
        R.ORDER_NOT_FOUND,
        "-2011",
    ),
    (
        Venue.BINANCE,
        ccxt.ExchangeError,
        '{"code":-4130,"msg":"An open stop ... is existing."}',
        R.STOP_ALREADY_EXISTS,
        "-4130",
    ),
    (
        Venue.BINANCE,
        ccxt.BadRequest,
        '{"code":-4014,"msg":"Price not increased by tick size."}',
        R.INVALID_PRICE,
        "-4014",
    ),
    (
        Venue.BINANCE,
        ccxt.BadRequest,
        '{"code":-1100,"msg":"Illegal characters found in parameter \'quantity\'"}',
        R.INVALID_QUANTITY,
        "-1100",
    ),
    (
        Venue.BYBIT,
        ccxt.InvalidOrder,
        '{"retCode":110093,"retMsg":"expect Falling"}',
        R.WOULD_TRIGGER_IMMEDIATELY,
        "110093",
    ),
    (
        Venue.BYBIT,
        ccxt.BadRequest,
        '{"retCode":10001,"retMsg":"StopLoss:50100 set for Buy position should lower than base_price:50000??MarkPrice"}',  # noqa: E501 - the venue's own text
        R.WOULD_TRIGGER_IMMEDIATELY,
        "10001",
    ),
    (
        Venue.BYBIT,
        ccxt.BadRequest,
        '{"retCode":10001,"retMsg":"params error: Qty invalid"}',
        R.INVALID_QUANTITY,
        "10001",
    ),
    (
        Venue.BYBIT,
        ccxt.BadRequest,
        '{"retCode":10001,"retMsg":"params error: symbol invalid"}',
        R.UNKNOWN_SYMBOL,
        "10001",
    ),
    (
        Venue.BYBIT,
        ccxt.PermissionDenied,
        '{"retCode":170209,"retMsg":"only available to ..."}',
        R.REGION_RESTRICTED,
        "170209",
    ),
    (
        Venue.BYBIT,
        ccxt.InvalidOrder,
        '{"retCode":34040,"retMsg":"not modified"}',
        R.NOT_MODIFIED,
        "34040",
    ),
]


@pytest.mark.parametrize(("venue", "kind", "body", "reason", "code"), VENUE_TABLE)
def test_the_venues_own_code_in_the_answer_decides_the_reason_and_is_kept(
    venue: Venue, kind: type[Exception], body: str, reason: RejectReason, code: str
) -> None:
    outcome = command_outcome(venue, kind(f"{venue.value} {body}"))
    assert isinstance(outcome, Rejected)
    assert (outcome.reason, outcome.code) == (reason, code)
    assert outcome.message and not outcome.retryable


def test_a_rate_limited_query_raises_exchange_unavailable_saying_so() -> None:
    failure = query_failure(Venue.BINANCE, ccxt.DDoSProtection("binanceusdm 429 Too Many"))
    assert failure.retryable and failure.rate_limited


def test_a_query_refused_for_bad_credentials_is_not_worth_retrying() -> None:
    body = 'binanceusdm {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
    failure = query_failure(Venue.BINANCE, ccxt.AuthenticationError(body))
    assert not failure.retryable and not failure.rate_limited


# Story 9: an order command the venue answered with a server failure may have been executed.
# Binance: "HTTP 5XX return codes are used for internal errors; the issue is on Binance's
# side. It is important to NOT treat this as a failure operation; the execution status is
# UNKNOWN and could have been a success." (developers.binance.com, HTTP return codes); its
# -1006 / -1007 say "execution status unknown" in their own text.
SERVER_FAILURES = [
    (Venue.BINANCE, ccxt.OperationFailed, '{"code":-1000,"msg":"An unknown error occured."}'),
    (
        Venue.BINANCE,
        ccxt.OperationFailed,
        '{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}',
    ),
    (
        Venue.BINANCE,
        ccxt.OperationFailed,
        '{"code":-1006,"msg":"An unexpected response was received from the message bus. '
        'Execution status unknown."}',
    ),
    (Venue.BYBIT, ccxt.ExchangeError, '{"retCode":10000,"retMsg":"Server Timeout"}'),
    (Venue.BYBIT, ccxt.ExchangeError, '{"retCode":10016,"retMsg":"System error."}'),
]


@pytest.mark.parametrize(("venue", "kind", "body"), SERVER_FAILURES, ids=lambda v: str(v)[:24])
def test_a_server_failure_answer_to_an_order_command_is_unknown_not_a_refusal(
    venue: Venue, kind: type[Exception], body: str
) -> None:
    outcome = command_outcome(venue, kind(f"{venue.value} {body}"), client_order_id="tc-op1-e0")
    assert isinstance(outcome, Unknown), outcome
    assert outcome.client_order_id == "tc-op1-e0"


@pytest.mark.parametrize(("venue", "kind", "body"), SERVER_FAILURES, ids=lambda v: str(v)[:24])
def test_a_server_failure_answer_to_a_query_is_the_venue_unavailable_worth_retrying(
    venue: Venue, kind: type[Exception], body: str
) -> None:
    failure = query_failure(venue, kind(f"{venue.value} {body}"))
    assert failure.retryable and not failure.rate_limited


@pytest.mark.parametrize(
    "message",
    [
        "binanceusdm POST http://127.0.0.1:1/fapi/v1/order 503 Service Unavailable <html></html>",
        "bybit POST http://127.0.0.1:1/v5/order/create 502 Bad Gateway <html></html>",
    ],
)
def test_an_http_5xx_to_an_order_command_is_unknown(message: str) -> None:
    venue = Venue.BINANCE if message.startswith("binance") else Venue.BYBIT
    outcome = command_outcome(venue, ccxt.ExchangeNotAvailable(message), client_order_id="tc-x")
    assert isinstance(outcome, Unknown), outcome


def test_a_5xx_is_unknown_whatever_code_its_body_carries() -> None:
    """ccxt maps a body by its code before it looks at the status; the adapter's watch does
    not let a 503 carrying a refusal code pass for a refusal."""
    client = ccxt.binanceusdm()
    watch_server_failures(client)
    body = '{"code":-4164,"msg":"Order\'s notional must be no smaller than 100"}'
    url = "https://fapi.binance.com/fapi/v1/order"
    with pytest.raises(ServerFailure) as raised:
        client.on_rest_response(503, "Service Unavailable", url, "POST", {}, body, {}, "")
    outcome = command_outcome(Venue.BINANCE, raised.value, client_order_id="tc-op1-e0")
    assert isinstance(outcome, Unknown)
    assert client.on_rest_response(400, "Bad Request", url, "POST", {}, body, {}, "") == body


# Region blocks and IP bans (issue 11, why 5). Binance answers a request from a restricted
# region with HTTP 451 and `{"code": 0, "msg": "Service unavailable from a restricted
# location according to 'b. Eligibility' ..."}` (as seen in ccxt issue #16044: ccxt raises
# ExchangeNotAvailable "... 451  {"code": 0, ...}"): final, not "venue unavailable, retry".
_REGION_BODY = (
    '{"code": 0, "msg": "Service unavailable from a restricted location according to '
    "'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service "
    'if you believe you received this message in error."}'
)


def _ccxt_raises(status: int, body: str) -> Exception:
    import json

    client = ccxt.binanceusdm()
    url = "https://fapi.binance.com/fapi/v1/order"
    try:
        client.handle_errors(status, "", url, "POST", {}, body, json.loads(body), {}, "")
        client.handle_http_status_code(status, "", url, "POST", body)
    except ccxt.BaseError as error:
        return error
    raise AssertionError(f"ccxt raised nothing for {status} {body}")


def test_binances_region_block_is_final_for_a_command_and_a_query() -> None:
    error = _ccxt_raises(451, _REGION_BODY)

    outcome = command_outcome(Venue.BINANCE, error)
    failure = query_failure(Venue.BINANCE, error)

    assert isinstance(outcome, Rejected), outcome
    assert (outcome.reason, outcome.retryable) == (R.REGION_RESTRICTED, False)
    assert not failure.retryable and not failure.rate_limited
