"""Leverage and margin mode on the venue, before each symbol's first entry (SPEC §3).

`MarginDesk.prepare(symbol)` runs once per symbol per process (a failure is tried again on
the next open): the margin mode is set where the venue keeps it per symbol (Binance), the
leverage is set, and both are read back; the leverage the venue confirms is what sizing
uses, and `leverage_set` journals it. A person may change either on the venue afterwards:
`prepare(symbol, reread=True)` — what the wave asks for each candidate (a symbol with no
position open), in the same concurrent round trip as the balance and the marks — reads both
again and, when they differ from what was confirmed, sets them up again (`leverage_set`
with `found_on_venue`) before anything is sized with them. "Already so" answers
(Binance -4046, Bybit 110043) are success. Where the margin mode is the account's (a Bybit
unified account), `check_account()` reads it at start and refuses to start when it differs
from the configuration: the bot never changes an account-wide setting behind the
operator's back.

Before an isolated entry the venue's leverage tiers give an estimate of the liquidation
price (`domain.leverage.liquidation_refusal`); an open whose liquidation would come before
its stop is refused. After the fill the open checks the venue's own liquidation price.
"""

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import attrs

from tradecore.domain.events import EventType
from tradecore.domain.leverage import (
    LeverageTier,
    LiquidationInsideStop,
    MarginMode,
    isolated_liquidation_price,
    liquidation_refusal,
    tier_for,
)
from tradecore.domain.model import Side
from tradecore.domain.numbers import ONE, percent
from tradecore.domain.sizing import SizingParams
from tradecore.domain.stops import StopParams
from tradecore.ports.exchange import Applied, Exchange, ExchangeUnavailable, Rejected

from .recorder import Recorder


class MarginModeMismatch(Exception):
    """The account's margin mode is not the configured one and only its owner may change it."""


@attrs.frozen(kw_only=True)
class SymbolMargin:
    """A symbol's leverage and margin mode as the venue confirmed them, and its tiers."""

    symbol: str
    leverage: Decimal
    mode: MarginMode
    tiers: tuple[LeverageTier, ...] = ()

    def refusal(
        self, side: Side, entry: Decimal, quantity: Decimal, stops: StopParams
    ) -> LiquidationInsideStop | None:
        """An isolated open whose estimated liquidation comes before its initial stop."""
        if self.mode is not MarginMode.ISOLATED:
            return None  # cross: the whole account's margin decides; checked after the fill
        distance = percent(stops.stop_loss_percent)
        stop = entry * (ONE - distance if side is Side.LONG else ONE + distance)
        return liquidation_refusal(side, entry, quantity, self.leverage, stop, self.tiers)

    def estimated_liquidation(
        self, side: Side, entry: Decimal, quantity: Decimal
    ) -> Decimal | None:
        """Where the venue would liquidate this isolated position, by its tiers; None when
        it cannot be estimated (cross margin, no tiers known, nothing held)."""
        if self.mode is not MarginMode.ISOLATED or entry <= 0 or quantity <= 0:
            return None
        tier = tier_for(self.tiers, entry * quantity)
        if tier is None:
            return None
        return isolated_liquidation_price(side, entry, quantity, self.leverage, tier)


@attrs.frozen(kw_only=True)
class NotPrepared:
    """The symbol's leverage or margin mode could not be set: no entry on it for now."""

    symbol: str
    detail: str


class MarginDesk:
    """Sets and confirms leverage and margin mode per symbol, once, before its first entry."""

    def __init__(self, exchange: Exchange, recorder: Recorder, sizing: SizingParams) -> None:
        self._exchange = exchange
        self._recorder = recorder
        self._sizing = sizing
        self._ready: dict[str, SymbolMargin] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def _venue(self) -> str:
        return self._exchange.venue.value

    def prepared(self, symbol: str) -> SymbolMargin | None:
        return self._ready.get(symbol)

    async def check_account(self, symbol: str) -> None:
        """Where the venue keeps one margin mode for the account, it must be the configured
        one: raises MarginModeMismatch (one line saying what to change) otherwise. May raise
        ExchangeUnavailable (start-up waits for the venue)."""
        if self._exchange.capabilities.margin_mode_per_symbol:
            return
        wanted = self._sizing.margin_mode
        held = await self._exchange.fetch_margin_mode(symbol)
        if held is wanted:
            return
        raise MarginModeMismatch(
            f"the {self._venue} account's margin mode is {held.value} and "
            f"trading.sizing.margin_mode is {wanted.value}: tradecore does not change an "
            f"account-wide setting; switch the account to {wanted.value} margin on the venue, "
            f'or set trading.sizing.margin_mode = "{held.value}" '
            f"(TRADECORE_TRADING__SIZING__MARGIN_MODE={held.value})"
        )

    async def prepare(self, symbol: str, *, reread: bool = False) -> SymbolMargin | NotPrepared:
        """The symbol's confirmed leverage and margin mode, set first if this process has not
        yet done so. `reread`: read them on the venue again (one round trip) and set them up
        again if someone changed them there since."""
        ready = self._ready.get(symbol)
        found: dict[str, object] | None = None
        if ready is not None and reread:
            found = await self._changed_on_venue(ready)
            if found is not None and self._ready.get(symbol) is ready:
                del self._ready[symbol]
            ready = self._ready.get(symbol)
        if ready is not None:
            return ready
        async with self._locks.setdefault(symbol, asyncio.Lock()):
            ready = self._ready.get(symbol)
            if ready is not None:
                return ready
            try:
                result = await self._set_up(symbol, found=found)
            except ExchangeUnavailable as error:
                result = NotPrepared(symbol=symbol, detail=f"the venue did not answer: {error}")
            if isinstance(result, SymbolMargin):
                self._ready[symbol] = result
            else:
                self._recorder.record(
                    EventType.LEVERAGE_NOT_SET,
                    symbol=symbol,
                    exchange=self._venue,
                    error=result.detail,
                    data={
                        "leverage": self._sizing.leverage,
                        "margin_mode": self._sizing.margin_mode.value,
                    },
                )
            return result

    async def _changed_on_venue(self, ready: SymbolMargin) -> dict[str, object] | None:
        """What the venue holds now, if it is not what it confirmed (None if it still is, or
        if it cannot say: then what was confirmed stands, and the open still checks the
        venue's own liquidation price after the fill)."""
        try:
            mode, leverage = await asyncio.gather(
                self._exchange.fetch_margin_mode(ready.symbol),
                self._exchange.fetch_leverage(ready.symbol),
            )
        except ExchangeUnavailable:
            return None
        if mode is ready.mode and leverage == ready.leverage:
            return None
        return {"leverage": leverage, "margin_mode": mode.value}

    async def _set_up(
        self, symbol: str, *, found: dict[str, object] | None = None
    ) -> SymbolMargin | NotPrepared:
        """Two round trips: both settings sent at once, then both read back (with the tiers)
        at once. The read-back is what counts: an answer lost on the way is settled by it."""
        ex, wanted = self._exchange, self._sizing.margin_mode
        per_symbol = ex.capabilities.margin_mode_per_symbol
        mode_answer, answer = await asyncio.gather(
            ex.set_margin_mode(symbol, wanted) if per_symbol else _nothing(),
            ex.set_leverage(symbol, self._sizing.leverage),
        )
        if isinstance(mode_answer, Rejected):
            return NotPrepared(symbol=symbol, detail=f"margin mode refused: {_said(mode_answer)}")
        if isinstance(answer, Rejected):
            return NotPrepared(symbol=symbol, detail=f"leverage refused: {_said(answer)}")
        isolated = wanted is MarginMode.ISOLATED
        held_mode, leverage, tiers = await asyncio.gather(
            ex.fetch_margin_mode(symbol),
            ex.fetch_leverage(symbol),
            ex.fetch_leverage_tiers(symbol) if isolated else _no_tiers(),
        )
        if held_mode is not wanted:
            return NotPrepared(
                symbol=symbol,
                detail=f"the venue holds {held_mode.value} margin, not {wanted.value}",
            )
        if leverage > self._sizing.leverage:  # less is safe (more margin); more is not
            return NotPrepared(
                symbol=symbol,
                detail=f"the venue holds {leverage}x, above the configured "
                f"{self._sizing.leverage}x",
            )
        self._recorder.record(
            EventType.LEVERAGE_SET,
            symbol=symbol,
            exchange=self._venue,
            data={
                "requested": self._sizing.leverage,
                "confirmed": leverage,
                "margin_mode": held_mode.value,
                "leverage_changed": isinstance(answer, Applied) and answer.changed,
                "margin_mode_changed": isinstance(mode_answer, Applied) and mode_answer.changed,
                **({"found_on_venue": found} if found is not None else {}),
            },
        )
        return SymbolMargin(symbol=symbol, leverage=leverage, mode=held_mode, tiers=tuple(tiers))


async def _nothing() -> None:
    return None


async def _no_tiers() -> Sequence[LeverageTier]:
    return ()


def _said(rejection: Rejected) -> str:
    code = f" [{rejection.code}]" if rejection.code else ""
    return f"{rejection.reason.value}{code}: {rejection.message}"
