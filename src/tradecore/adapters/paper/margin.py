"""The simulated venue's leverage and margin-mode settings; each venue's answers are its dialect's.

Binance USDⓈ-M keeps both per symbol: `POST /fapi/v1/leverage` takes a whole number from 1
to the symbol's bracket maximum (else -4028 "Leverage X is not valid") and answers the same
leverage again with success; `POST /fapi/v1/marginType` answers -4046 "No need to change
margin type." when the symbol already has it and -4048 while a position is open
(developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Change-Margin-Type;
the codes as ccxt 4.5.90 binance.py lists them). A new account's symbols are CROSSED.

Bybit keeps leverage per symbol (`POST /v5/position/set-leverage`, 0.01 steps up to the
risk limit's maximum, 110043 "Set leverage not modified" for the leverage it already has)
and a unified account's margin mode for the whole account (`GET /v5/account/info`
`marginMode`; set only by `POST /v5/account/set-margin-mode`, which the bot never sends).
"""

from collections.abc import Mapping
from decimal import Decimal

from tradecore.adapters.paper.venues import PaperDialect
from tradecore.domain.leverage import LeverageTier, MarginMode
from tradecore.domain.precision import MarketRules
from tradecore.ports.exchange import Applied, Rejected, RejectReason

R = RejectReason
ONE = Decimal(1)
# One tier as deep as any order the engine takes: the engine's liquidation uses one rate.
_DEPTH = Decimal(10) ** 12


class MarginSettings:
    """Leverage per symbol, and the margin mode per symbol or for the whole account."""

    def __init__(
        self,
        profile: PaperDialect,
        markets: Mapping[str, MarketRules],
        *,
        leverage: Decimal,
        maintenance_rate: Decimal,
        account_mode: MarginMode = MarginMode.ISOLATED,
    ) -> None:
        self.profile = profile
        self._markets = markets
        self._maintenance_rate = maintenance_rate
        self.leverage = {s: min(leverage, r.max_leverage) for s, r in markets.items()}
        # per symbol where the venue keeps it so (Binance: a new account's are CROSSED)
        self.modes = {s: MarginMode.CROSS for s in markets}
        self.account_mode = account_mode  # where the venue keeps one for the account (Bybit)

    @property
    def per_symbol(self) -> bool:
        return self.profile.capabilities.margin_mode_per_symbol

    def mode(self, symbol: str) -> MarginMode:
        return self.modes[symbol] if self.per_symbol else self.account_mode

    def tiers(self, symbol: str) -> tuple[LeverageTier, ...]:
        rules = self._markets[symbol]
        return (
            LeverageTier(
                min_notional=0,
                max_notional=_DEPTH,
                max_leverage=rules.max_leverage,
                maintenance_rate=self._maintenance_rate,
            ),
        )

    def change_leverage(self, symbol: str, leverage: Decimal) -> Applied | Rejected:
        rules = self._markets.get(symbol)
        if rules is None:
            return self.profile.refusal(R.UNKNOWN_SYMBOL, symbol=symbol)
        whole = self.profile.whole_leverage
        if not ONE <= leverage <= rules.max_leverage or (whole and leverage % ONE):
            return self.profile.refusal(R.INVALID_LEVERAGE, leverage=leverage)
        if self.leverage[symbol] == leverage:
            return self.profile.leverage_unchanged()
        self.leverage[symbol] = leverage
        return Applied()

    def change_mode(
        self, symbol: str, mode: MarginMode, *, position_open: bool
    ) -> Applied | Rejected:
        if symbol not in self._markets:
            return self.profile.refusal(R.UNKNOWN_SYMBOL, symbol=symbol)
        if not self.per_symbol:
            return self.profile.refusal(
                R.NOT_SUPPORTED,
                what="a margin mode per symbol: a unified account's margin mode is the account's",
            )
        if self.modes[symbol] is mode:
            return self.profile.margin_mode_unchanged()
        if position_open:
            return self.profile.refusal(R.MARGIN_MODE_LOCKED)
        self.modes[symbol] = mode
        return Applied()
