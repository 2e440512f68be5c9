"""Leverage, margin mode and leverage tiers through ccxt, per venue (checked in ccxt 4.5.90).

Binance USDⓈ-M (`binanceusdm`):
- `set_leverage(n, sym)` sends `POST /fapi/v1/leverage {symbol, leverage}` (a whole number,
  1–125; ccxt refuses others itself); the same leverage again is answered with success.
- `set_margin_mode('isolated'|'cross', sym)` sends `POST /fapi/v1/marginType {symbol,
  marginType: ISOLATED|CROSSED}`; the mode the symbol already has is answered with -4046
  "No need to change margin type." (ccxt's linear table raises OperationRejected; its own
  catch only covers `MarginModeAlreadySet`), -4048 while a position is open.
- `fetch_leverage(sym)` → ccxt `fetch_leverages`: `GET /fapi/v1/leverageBracket` (cached) and
  `GET /fapi/v1/symbolConfig` (`leverage`); `fetch_margin_mode(sym)` → `GET
  /fapi/v1/symbolConfig?symbol=` (`marginType` CROSSED|ISOLATED).
- `fetch_leverage_tiers([sym])` → `GET /fapi/v1/leverageBracket` (`notionalFloor`,
  `notionalCap`, `initialLeverage`, `maintMarginRatio`, `cum`).

Bybit v5 linear (`bybit`):
- `set_leverage(n, sym)` sends `POST /v5/position/set-leverage {category, symbol,
  buyLeverage, sellLeverage}`; the leverage it already has is 110043 "Set leverage not
  modified" (ccxt raises BadRequest). The leverage goes as our exact text, in params.
- `set_margin_mode` on a unified account sends `POST /v5/account/set-margin-mode`: the
  whole account's mode. The adapter never calls it: `margin_mode_per_symbol` is False and
  a symbol's margin mode is refused NOT_SUPPORTED.
- `fetch_leverage(sym)` → `GET /v5/position/list?symbol=` ("If symbol passed, it returns
  data regardless of having position or not", v5 Get Position Info) `leverage`;
  `fetch_margin_mode(sym)` → `GET /v5/account/info` `marginMode` (ISOLATED_MARGIN,
  REGULAR_MARGIN = cross, PORTFOLIO_MARGIN).
- Tiers: ccxt's `fetch_leverage_tiers` pages through every linear symbol's risk limits (up
  to 200 calls, the symbol is not sent), so the adapter asks `GET /v5/market/risk-limit
  ?category=linear&symbol=` itself (`riskLimitValue`, `maintenanceMargin` a rate,
  `maxLeverage`, `mmDeduction`; bybit-exchange.github.io/docs/v5/market/risk-limit).
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt

from tradecore.adapters.ccxt import parse
from tradecore.adapters.ccxt.errors import command_outcome
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.symbols import to_venue
from tradecore.ports.exchange import Applied, Rejected, RejectReason, SettingOutcome

if TYPE_CHECKING:
    from tradecore.adapters.ccxt.exchange import CcxtExchange

R = RejectReason
ONE = Decimal(1)

_BYBIT_MODES = {
    "ISOLATED_MARGIN": MarginMode.ISOLATED,
    "REGULAR_MARGIN": MarginMode.CROSS,
    "PORTFOLIO_MARGIN": MarginMode.PORTFOLIO,
}


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


async def _setting(ex: "CcxtExchange", send: Any) -> SettingOutcome:
    """Send once; the venue's "already so" is done, every other failure what it means."""
    try:
        answer = await ex._call(send)
    except ccxt.BaseError as error:
        outcome = command_outcome(ex.venue, error)
        if isinstance(outcome, Rejected) and outcome.reason is R.NOT_MODIFIED:
            return Applied(changed=False)
        return outcome
    if isinstance(answer, Mapping) and str(answer.get("code")) == "-4046":
        return Applied(changed=False)  # ccxt caught "No need to change margin type." itself
    return Applied()


async def set_leverage(ex: "CcxtExchange", symbol: str, leverage: Decimal) -> SettingOutcome:
    rules = await ex._market_rules(symbol)
    if isinstance(rules, Rejected):
        return rules
    unified = to_venue(symbol)
    if ex.venue.value == "binance":
        if leverage % ONE or not ONE <= leverage <= rules.max_leverage:
            return Rejected(
                reason=R.INVALID_LEVERAGE,
                message=f"refused before sending: Leverage {leverage} is not valid",
                code="-4028",
            )
        return await _setting(ex, lambda: ex.client.set_leverage(int(leverage), unified))
    text = _text(leverage)
    params = {"buyLeverage": text, "sellLeverage": text}  # our exact text, not a float's
    return await _setting(ex, lambda: ex.client.set_leverage(float(text), unified, params))


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
    def read(raw: Mapping[str, Any]) -> Decimal:
        info = raw["info"]
        if "info" in info:  # Bybit: the unified position, around the venue's row
            info = info["info"]
        return parse.dec(info.get("leverage"), name="leverage")

    return await ex._query(lambda: ex.client.fetch_leverage(to_venue(symbol)), read)


async def fetch_margin_mode(ex: "CcxtExchange", symbol: str) -> MarginMode:
    def read(raw: Mapping[str, Any]) -> MarginMode:
        info = raw["info"]
        if ex.venue.value == "binance":
            kind = str(info["marginType"]).upper()
            return MarginMode.CROSS if kind == "CROSSED" else MarginMode.ISOLATED
        return _BYBIT_MODES[str(info["marginMode"])]

    return await ex._query(lambda: ex.client.fetch_margin_mode(to_venue(symbol)), read)


async def fetch_leverage_tiers(ex: "CcxtExchange", symbol: str) -> Sequence[LeverageTier]:
    unified = to_venue(symbol)
    if ex.venue.value == "binance":
        return await ex._query(
            lambda: ex.client.fetch_leverage_tiers([unified]),
            lambda raw: [_binance_tier(t["info"]) for t in raw.get(unified) or []],
        )
    request = {"category": "linear", "symbol": symbol}
    return await ex._query(
        lambda: ex.client.publicGetV5MarketRiskLimit(request),
        lambda raw: _bybit_tiers(raw["result"]["list"], symbol),
    )


def _json_number(value: object, name: str) -> Decimal:
    """leverageBracket's numbers are JSON numbers (`"maintMarginRatio": 0.0065`), so they
    arrive as floats: read through their shortest repr, never their binary value."""
    return parse.dec(repr(value) if isinstance(value, float) else value, name=name)


def _binance_tier(info: Mapping[str, Any]) -> LeverageTier:
    return LeverageTier(
        min_notional=_json_number(info["notionalFloor"], "notionalFloor"),
        max_notional=_json_number(info["notionalCap"], "notionalCap"),
        max_leverage=_json_number(info["initialLeverage"], "initialLeverage"),
        maintenance_rate=_json_number(info["maintMarginRatio"], "maintMarginRatio"),
        maintenance_amount=_json_number(info.get("cum", 0), "cum"),
    )


def _bybit_tiers(rows: Sequence[Mapping[str, Any]], symbol: str) -> list[LeverageTier]:
    ordered = sorted((r for r in rows if r.get("symbol") == symbol), key=lambda r: int(r["id"]))
    tiers, floor = [], Decimal(0)
    for row in ordered:
        cap = parse.dec(row["riskLimitValue"], name="riskLimitValue")
        tiers.append(
            LeverageTier(
                min_notional=floor,
                max_notional=cap,
                max_leverage=parse.dec(row["maxLeverage"], name="maxLeverage"),
                maintenance_rate=parse.dec(row["maintenanceMargin"], name="maintenanceMargin"),
                maintenance_amount=parse.dec(row.get("mmDeduction") or 0, name="mmDeduction"),
            )
        )
        floor = cap
    return tiers
