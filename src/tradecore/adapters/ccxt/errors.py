"""Every ccxt exception as one of the port's outcomes: Rejected (retryable or not) or Unknown.

The venue's own code decides the reason where the venue answered (ccxt puts the response
body in the exception text: `binanceusdm {"code":-2021,...}`, `bybit {"retCode":110093,...}`);
the exception class decides the rest. Whether a request can have reached the venue decides
between a retryable rejection and `Unknown`. A server failure (an HTTP 5xx, or a code the
venue uses for its own internal failure) answering an order command is `Unknown`: Binance's
docs say of 5xx "It is important to NOT treat this as a failure operation; the execution
status is UNKNOWN and could have been a success" (developers.binance.com, USDⓈ-M futures,
General Info / HTTP return codes). The same answer to a query is the venue unavailable.

The whole table (ccxt class -> command outcome / query error) is in docs/venues.md.
"""

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import ccxt.async_support as ccxt

from tradecore.adapters.ccxt.venues import dialect_for
from tradecore.domain.model import Venue
from tradecore.ports.exchange import ExchangeUnavailable, Rejected, RejectReason, Unknown

R = RejectReason

# Each venue's codes (its `CcxtDialect.codes`, `reason_for`, `execution_unknown_codes`)
# live in its module under adapters/ccxt/venues/.


def venue_answer(error: Exception) -> tuple[str | None, str]:
    """The venue's own (code, message) from a ccxt exception's text, if it carries a body."""
    text = str(error)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("code", body.get("retCode", body.get("ret_code")))
            message = body.get("msg", body.get("retMsg", body.get("ret_msg")))
            if code is not None:
                return str(code), str(message if message is not None else text)
    return None, text


def reason_for(venue: Venue, code: str | None, message: str) -> RejectReason | None:
    """The port's reason for a venue code (where one code means many, by its text)."""
    if code is None:
        return None
    return dialect_for(venue).reason_for(code, message)


# The venues' codes for their own internal failure, after which an order command may or may
# not have been executed, are each dialect's `execution_unknown_codes`.


class ServerFailure(ccxt.ExchangeNotAvailable):
    """The venue answered with an HTTP 5xx (raised by `watch_server_failures`)."""


# ccxt's own text for an HTTP error it maps by status: "<id> <METHOD> <url> <status> <reason>"
_HTTP_STATUS = re.compile(r"^\S+ (?:GET|POST|PUT|DELETE|PATCH) \S+ (\d{3}) ")
# ccxt binance's text for a 418 or 429 it raises itself: "<id> <status> <reason> <body>"
_BINANCE_STATUS = re.compile(r"^\S+ (4\d\d) ")


def http_status(error: Exception) -> int | None:
    """The HTTP status of the venue's answer, where ccxt's text or our own error keeps it."""
    if isinstance(error, IpBanned | RegionBlocked):
        return error.status
    found = _HTTP_STATUS.match(str(error)) or _BINANCE_STATUS.match(str(error))
    return int(found[1]) if found else None


class RegionBlocked(ccxt.RestrictedLocation):
    """HTTP 451: Binance serves no request from this region, whatever the body's code (0).
    "Some regions/areas may be restricted to access some products or services"
    (dev.binance.vision, "How to deal with HTTP status code at Binance API?")."""

    status = 451


class IpBanned(ccxt.DDoSProtection):
    """The IP is banned for a while: the HTTP status each venue's dialect names
    (`ip_ban_statuses`; Binance 418: "IP bans are tracked and scale in duration for repeat
    offenders, from 2 minutes to 3 days", the answer's Retry-After header gives the seconds
    "until the ban is over", its -1003 text "IP banned until <ms>"; Bybit 403, "access too
    frequent": at least 10 minutes). Raised by the adapter, too, for a request it does not
    send during the ban."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        status: int = 418,
        shortest: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, from the answer's Retry-After header
        self.status = status
        self.shortest = SHORTEST_BAN if shortest is None else shortest  # when nothing says


_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
# Binance's shortest ban ("from 2 minutes to 3 days"), when an answer names no end
SHORTEST_BAN = timedelta(minutes=2)


def ban_end(error: Exception, now: datetime) -> datetime | None:
    """When the IP ban `error` reports ends (None: it is no ban): the later of its
    Retry-After and its text's "banned until <ms>", else the shortest ban from `now`."""
    if isinstance(error, IpBanned):
        shortest = error.shortest
    elif http_status(error) == 418:  # ccxt binance raises its own for a 418
        shortest = SHORTEST_BAN
    else:
        return None
    ends = []
    if isinstance(error, IpBanned) and error.retry_after is not None:
        ends.append(now + timedelta(seconds=error.retry_after))
    found = _BANNED_UNTIL.search(str(error))
    if found is not None:
        ends.append(datetime.fromtimestamp(int(found[1]) / 1000, tz=now.tzinfo))
    return max(ends) if ends else now + shortest


def watch_server_failures(
    client: ccxt.Exchange, ip_bans: Mapping[int, timedelta] | None = None
) -> None:
    """Make every HTTP 5xx answer of `client` a `ServerFailure`, whatever its body says.

    ccxt maps an error body by its code before it looks at the HTTP status, so without this
    a Binance 503 carrying `{"code":-1001}` would read as a plain refusal.
    """
    original = client.on_rest_response

    def on_rest_response(code: int, reason: str, url: str, method: str, *rest: Any) -> Any:
        body = original(code, reason, url, method, *rest)
        if isinstance(code, int) and code >= 500:
            raise ServerFailure(f"{client.id} {method} {url} {code} {reason} {body}")
        if code == 451:  # ccxt would raise ExchangeNotAvailable: "retry", forever
            raise RegionBlocked(f"{client.id} {method} {url} {code} {reason} {body}")
        bans = {418: SHORTEST_BAN} if ip_bans is None else ip_bans
        if isinstance(code, int) and code in bans:
            headers = rest[0] if rest and isinstance(rest[0], Mapping) else {}
            raise IpBanned(
                f"{client.id} {method} {url} {code} {reason} {body}",
                retry_after=_retry_after(headers),
                status=code,
                shortest=bans[code],
            )
        return body

    client.on_rest_response = on_rest_response


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    """A 418's Retry-After header: the seconds until the ban is over."""
    for name, value in headers.items():
        if name.lower() == "retry-after" and str(value).strip().isdigit():
            return float(str(value).strip())
    return None


def server_failed(venue: Venue, error: Exception) -> bool:
    """True when the venue (not the network) failed while handling the request."""
    if isinstance(error, ServerFailure):
        return True
    status = _HTTP_STATUS.match(str(error))
    if isinstance(error, ccxt.ExchangeNotAvailable) and status and status[1].startswith("5"):
        return True
    return venue_answer(error)[0] in dialect_for(venue).execution_unknown_codes


def clock_skew(venue: Venue, error: Exception) -> bool:
    """The venue refused the request's timestamp (our clock drifted): resync and resend."""
    code = venue_answer(error)[0]
    return isinstance(error, ccxt.InvalidNonce) or code in dialect_for(venue).clock_skew_codes


def _connect_failed(error: BaseException) -> bool:
    """True when the request provably never left: the TCP connection could not be made."""
    cause = error.__cause__
    return isinstance(cause, aiohttp.ClientConnectorError)


def _dropped(error: BaseException) -> bool:
    """True when the connection broke after the request may have been sent."""
    cause = error.__cause__
    return isinstance(cause, aiohttp.ClientConnectionError) and not _connect_failed(error)


_BY_CLASS: tuple[tuple[type[Exception], RejectReason, bool], ...] = (
    (ccxt.RateLimitExceeded, R.RATE_LIMITED, True),
    (ccxt.DDoSProtection, R.RATE_LIMITED, True),
    (ccxt.InvalidNonce, R.OTHER, True),
    (ccxt.ExchangeNotAvailable, R.VENUE_UNAVAILABLE, True),
    (ccxt.OrderNotFound, R.ORDER_NOT_FOUND, False),
    (ccxt.OrderImmediatelyFillable, R.WOULD_TRIGGER_IMMEDIATELY, False),
    (ccxt.DuplicateOrderId, R.DUPLICATE_CLIENT_ID, False),
    (ccxt.InsufficientFunds, R.INSUFFICIENT_BALANCE, False),
    (ccxt.BadSymbol, R.UNKNOWN_SYMBOL, False),
    (ccxt.RestrictedLocation, R.REGION_RESTRICTED, False),
    (ccxt.AuthenticationError, R.AUTHENTICATION, False),
    (ccxt.NotSupported, R.NOT_SUPPORTED, False),
    (ccxt.NoChange, R.NOT_MODIFIED, False),
    (ccxt.ExchangeError, R.OTHER, False),
)


def command_outcome(
    venue: Venue, error: Exception, *, client_order_id: str | None = None
) -> Rejected | Unknown:
    """What a failed command means: refused (and whether retrying may help) or unknown."""
    if isinstance(error, ccxt.RequestTimeout) or _dropped(error):
        return Unknown(message=f"no answer: {error}", client_order_id=client_order_id)
    if server_failed(venue, error):
        return Unknown(
            message=f"server failure, execution status unknown: {error}",
            client_order_id=client_order_id,
        )
    if isinstance(error, ccxt.ExchangeNotAvailable) and _connect_failed(error):
        return Rejected(
            reason=R.NETWORK_ERROR, message=f"connection failed: {error}", retryable=True
        )
    if http_status(error) == 451:
        return Rejected(reason=R.REGION_RESTRICTED, message=str(error), retryable=False, code="451")
    code, message = venue_answer(error)
    reason = reason_for(venue, code, message)
    retryable = False
    for kind, by_class, retry in _BY_CLASS:
        if isinstance(error, kind):
            reason = reason if reason is not None else by_class
            retryable = retry
            break
    else:
        if isinstance(error, ccxt.OperationFailed) and not isinstance(
            error, (ccxt.NetworkError, ccxt.BadResponse)
        ):
            reason, retryable = reason or R.VENUE_UNAVAILABLE, True
        else:  # a broken or missing answer after sending: the venue may have acted
            return Unknown(message=f"unreadable answer: {error}", client_order_id=client_order_id)
    if reason in (R.RATE_LIMITED, R.VENUE_UNAVAILABLE) or clock_skew(venue, error):
        retryable = True
    return Rejected(reason=reason, message=message, retryable=retryable, code=code)


def query_failure(venue: Venue, error: Exception) -> ExchangeUnavailable:
    """A failed query as the port's `ExchangeUnavailable`, saying if retrying may help."""
    rate_limited = isinstance(error, (ccxt.RateLimitExceeded, ccxt.DDoSProtection))
    code, message = venue_answer(error)
    reason = reason_for(venue, code, message)
    rate_limited = rate_limited or reason is R.RATE_LIMITED
    retryable = (
        isinstance(error, (ccxt.OperationFailed, ccxt.NetworkError))
        or rate_limited
        or reason is R.VENUE_UNAVAILABLE  # e.g. Bybit 429 "high server load. Please retry"
        or server_failed(venue, error)
    ) and http_status(error) != 451
    return ExchangeUnavailable(
        f"{venue.value}: {type(error).__name__}: {message}",
        retryable=retryable,
        rate_limited=rate_limited,
    )
