"""Leverage, margin mode and leverage tiers through ccxt (checked in ccxt 4.5.90).

What each venue sends and reads (Binance `POST /fapi/v1/leverage`, `/fapi/v1/marginType`;
Bybit `POST /v5/position/set-leverage`, the account-wide margin mode) is its dialect's
(`adapters/ccxt/venues/<venue>.py`); here is what every venue shares: a setting sent once,
"already so" answered as done, and a symbol's margin mode refused where the venue keeps it
per account (`margin_mode_per_symbol` False).
"""

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt

from tradecore.adapters.ccxt.errors import command_outcome
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.symbols import to_venue
from tradecore.ports.exchange import Applied, Rejected, RejectReason, SettingOutcome

if TYPE_CHECKING:
    from tradecore.adapters.ccxt.exchange import CcxtExchange

R = RejectReason
ONE = Decimal(1)


async def _setting(ex: "CcxtExchange", send: Any) -> SettingOutcome:
    """Send once; the venue's "already so" is done, every other failure what it means."""
    try:
        answer = await ex._call(send)
    except ccxt.BaseError as error:
        outcome = command_outcome(ex.venue, error)
        if isinstance(outcome, Rejected) and outcome.reason is R.NOT_MODIFIED:
            return Applied(changed=False)
        return outcome
    if isinstance(answer, Mapping) and str(answer.get("code")) in ex.dialect.already_done_codes:
        return Applied(changed=False)  # ccxt caught the venue's "already so" itself
    return Applied()


async def set_leverage(ex: "CcxtExchange", symbol: str, leverage: Decimal) -> SettingOutcome:
    rules = await ex._market_rules(symbol)
    if isinstance(rules, Rejected):
        return rules
    call = ex.dialect.set_leverage(ex.client, to_venue(symbol), leverage, rules)
    if not callable(call):
        return call  # refused before sending
    return await _setting(ex, call)


async def set_margin_mode(ex: "CcxtExchange", symbol: str, mode: MarginMode) -> SettingOutcome:
    if not ex.capabilities.margin_mode_per_symbol:
        return Rejected(
            reason=R.NOT_SUPPORTED,
            message=f"{ex.venue.value}: a unified account's margin mode is the account's, "
            "not a symbol's; it is read at start and never set by the bot",
        )
    rules = await ex._market_rules(symbol)
    if isinstance(rules, Rejected):
        return rules
    unified = to_venue(symbol)
    return await _setting(ex, lambda: ex.client.set_margin_mode(mode.value, unified))


async def fetch_leverage(ex: "CcxtExchange", symbol: str) -> Decimal:
    if ex.dialect.settings_in_one_answer:
        return ex.dialect.read_leverage({"info": await _symbol_settings(ex, symbol)})
    read = ex.dialect.read_leverage
    return await ex._query(lambda: ex.client.fetch_leverage(to_venue(symbol)), read)


async def fetch_margin_mode(ex: "CcxtExchange", symbol: str) -> MarginMode:
    if ex.dialect.settings_in_one_answer:
        return ex.dialect.read_margin_mode(await _symbol_settings(ex, symbol))
    read = ex.dialect.read_margin_mode
    return await ex._query(
        lambda: ex.client.fetch_margin_mode(to_venue(symbol)), lambda raw: read(raw["info"])
    )


async def _symbol_settings(ex: "CcxtExchange", symbol: str) -> Mapping[str, Any]:
    """The symbol's own configuration (ccxt `fetch_margin_mode`'s request, `info`), read once
    for every caller asking while it is in flight: a wave's re-read asks for the leverage and
    the margin mode at once, and the venue answers both in one."""
    flights = ex.settings_flights
    flight = flights.get(symbol)
    if flight is None:
        unified = to_venue(symbol)
        flight = asyncio.ensure_future(
            ex._query(lambda: ex.client.fetch_margin_mode(unified), lambda raw: raw["info"])
        )
        flights[symbol] = flight
        flight.add_done_callback(lambda done: _landed(flights, symbol, done))
    info: Mapping[str, Any] = await asyncio.shield(flight)
    return info


def _landed(flights: dict[str, "asyncio.Future[Any]"], symbol: str, done: Any) -> None:
    if flights.get(symbol) is done:
        del flights[symbol]
    if not done.cancelled():
        done.exception()  # retrieved: every caller that still waits has raised it itself


async def fetch_leverage_tiers(ex: "CcxtExchange", symbol: str) -> Sequence[LeverageTier]:
    return await ex.dialect.leverage_tiers(ex, symbol)
