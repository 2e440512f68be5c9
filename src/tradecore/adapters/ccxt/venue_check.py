"""`venue-check`: the facts the answer corpus marks unverified, checked on a demo account.

With the smallest order on one symbol it opens a position, places a stop-loss and a
take-profit side by side and reads them back, cancels an algo order (Binance), looks up an
unknown client id, re-sends the same trading stop (Bybit), checks that the stop an entry
carries is set on the position (Bybit), sets and reads back leverage and
margin mode, and reads the risk tiers. Each check names the corpus entries it holds to
(docs/venues.md, "The answer corpus" and "Checking the venue: venue-check"). Everything it
opens carries the client-id prefix `tcvc-`, never the bot's `tc-`; it is removed before the
check returns, and what a killed run left is removed by the next run first.

An adapter, not a use case: the take-profit and the cancel-algo answer need the ccxt client's
raw answers, which the exchange port does not give.
"""

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import attrs

from tradecore.adapters.ccxt.exchange import CcxtExchange
from tradecore.adapters.ccxt.venues import CheckFacts
from tradecore.domain.events import Event, EventType, Severity
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.orders import Order, OrderType, VenuePosition
from tradecore.domain.precision import MarketRules, Rounding, price_for
from tradecore.domain.symbols import to_venue
from tradecore.ports.clock import Clock, IdGenerator
from tradecore.ports.events import EventSink
from tradecore.ports.exchange import Accepted, Applied, Rejected, RejectReason

PREFIX = "tcvc-"  # never the bot's "tc-": the bot reads these orders as someone else's


@attrs.frozen(kw_only=True)
class CheckResult:
    """One fact: what the corpus says (`expected`), what the venue answered (`seen`)."""

    name: str
    facts: tuple[str, ...]  # the corpus entries it holds to
    expected: str
    seen: str
    passed: bool


@attrs.frozen(kw_only=True)
class CheckReport:
    venue: Venue
    symbol: str
    run_id: str
    results: tuple[CheckResult, ...]
    leftovers_removed: int = 0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)


class VenueCheckError(Exception):
    """The check cannot run here (the symbol holds someone's position, no such symbol)."""


def render(report: CheckReport) -> str:
    """The table `venue-check` prints."""
    rows = [("check", "result", "seen", "expected", "corpus")]
    for r in report.results:
        rows.append(
            (r.name, "pass" if r.passed else "FAIL", r.seen, r.expected, ", ".join(r.facts) or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        for row in rows
    ]
    failed = sum(not r.passed for r in report.results)
    verdict = "all facts as documented" if failed == 0 else f"{failed} fact(s) differ"
    head = f"venue-check {report.venue.value} {report.symbol} (run {report.run_id}): {verdict}"
    return "\n".join([head, *lines])


class VenueCheck:
    """One run of the checks on one symbol; `run()` always cleans up before it returns or
    raises (a cancelled run too: SIGINT)."""

    def __init__(
        self,
        exchange: CcxtExchange,
        *,
        symbol: str,
        events: EventSink,
        clock: Clock,
        ids: IdGenerator,
        say: Callable[[str], None] = lambda _: None,
        hold: float = 0.0,
        run_id: str | None = None,
    ) -> None:
        self.x = exchange
        self.symbol = symbol
        self.events = events
        self.clock = clock
        self.ids = ids
        self.say = say
        self.hold = hold
        self.run_id = run_id or secrets.token_hex(4)
        self.results: list[CheckResult] = []
        self.opened = False
        self._leftovers = 0

    # ------------------------------------------------------------------ running

    def cid(self, tag: str) -> str:
        return f"{PREFIX}{self.run_id}-{tag}"

    async def run(self) -> CheckReport:
        rules = await self._rules()
        self._leftovers = await self.remove_leftovers()
        try:
            await self._checks(rules)
        finally:
            await asyncio.shield(self.clean_up())
        report = CheckReport(
            venue=self.x.venue,
            symbol=self.symbol,
            run_id=self.run_id,
            results=tuple(self.results),
            leftovers_removed=self._leftovers,
        )
        self._journal_summary(report)
        await self.events.flush()
        return report

    async def _rules(self) -> MarketRules:
        markets = await self.x.load_markets()
        if self.symbol not in markets:
            raise VenueCheckError(
                f"{self.symbol!r} is not a {self.x.venue.value} linear USDT market; pick a "
                "liquid one with --symbol (default BTCUSDT)"
            )
        return markets[self.symbol]

    async def _checks(self, rules: MarketRules) -> None:
        await self.check_mark_candles()
        await self.check_tiers()
        await self.check_leverage()
        await self.check_margin_mode()
        await self.check_unknown_client_id()
        carried = await self._carried_stop(rules)
        entry = await self.open_position(rules, carried=carried)
        if entry is None:
            return
        if carried is not None:
            await self.check_entry_stop(carried)
        mark = await self.x.fetch_mark_price(self.symbol)
        stop = await self.check_stop_and_take_profit(rules, entry, mark)
        await self.x.dialect.own_check(self, stop, rules, mark)
        if self.hold > 0:
            self.say(f"holding the check's orders for {self.hold:g} s")
            await asyncio.sleep(self.hold)

    def record(
        self, name: str, facts: Sequence[str], expected: str, seen: str, passed: bool
    ) -> None:
        result = CheckResult(
            name=name, facts=tuple(facts), expected=expected, seen=seen, passed=passed
        )
        self.results.append(result)
        self.say(f"{'pass' if passed else 'FAIL'}  {name}: {seen}")
        self.events.emit(
            Event(
                id=self.ids.new_uuid(),
                type=EventType.VENUE_FACT_CHECKED,
                created_at=self.clock.now(),
                severity=Severity.INFO if passed else Severity.WARNING,
                symbol=self.symbol,
                exchange=self.x.venue.value,
                correlation_id=f"venue-check-{self.run_id}",
                data=attrs.asdict(result),
            )
        )

    def _journal_summary(self, report: CheckReport) -> None:
        self.events.emit(
            Event(
                id=self.ids.new_uuid(),
                type=EventType.VENUE_CHECK_COMPLETED,
                created_at=self.clock.now(),
                severity=Severity.INFO if report.passed else Severity.WARNING,
                symbol=self.symbol,
                exchange=self.x.venue.value,
                correlation_id=f"venue-check-{self.run_id}",
                data={
                    "passed": report.passed,
                    "checks": len(report.results),
                    "failed": [r.name for r in report.results if not r.passed],
                    "leftovers_removed": report.leftovers_removed,
                },
            )
        )

    async def attempt(
        self, name: str, facts: Sequence[str], expected: str, check: Callable[[], Awaitable[None]]
    ) -> None:
        """Run one check; a query that fails is that check's failure, not the run's."""
        try:
            await check()
        except Exception as exc:  # the venue's failure is the finding
            self.record(name, facts, expected, f"error: {exc}", False)

    # ------------------------------------------------------------------ leverage, margin

    async def check_mark_candles(self) -> None:
        """The mark's last ten minutes as klines: one a minute, each following the last, the
        one in progress closing near the mark (a restart's trailing catch-up reads them)."""
        facts = self._facts.mark_candles
        name = "mark history"
        expected = "one-minute candles in a row from 10 min ago, the last within 1 % of the mark"

        async def history() -> None:
            mark = await self.x.fetch_mark_price(self.symbol)
            since = self.clock.now() - timedelta(minutes=10)
            found = await self.x.fetch_mark_candles(self.symbol, since=since)
            in_a_row = all(
                a.closes_at == b.opened_at == a.opened_at + timedelta(minutes=1)
                for a, b in itertools.pairwise(found)
            )
            near = bool(found) and abs(found[-1].close - mark) <= mark / 100
            since_ok = bool(found) and found[0].closes_at > since  # none before since's minute
            seen = f"{len(found)} candles, in a row: {in_a_row}, last close " + (
                f"{found[-1].close} (mark {mark})" if found else "none"
            )
            self.record(name, facts, expected, seen, in_a_row and near and since_ok)

        await self.attempt(name, facts, expected, history)

    async def check_tiers(self) -> None:
        facts = self._facts.tiers

        async def tiers() -> None:
            found = await self.x.fetch_leverage_tiers(self.symbol)
            ordered = all(a.max_notional <= b.max_notional for a, b in itertools.pairwise(found))
            first = found[0].min_notional if found else None
            seen = f"{len(found)} tiers, first from {first}"
            self.record(
                "leverage tiers", facts, "tiers, smallest first", seen, bool(found) and ordered
            )

        await self.attempt("leverage tiers", facts, "tiers, smallest first", tiers)

    async def check_leverage(self) -> None:
        facts = self._facts.leverage
        name = "leverage set, read back"

        async def leverage() -> None:
            before = await self.x.fetch_leverage(self.symbol)
            target = Decimal(2) if before != 2 else Decimal(3)
            outcome = await self.x.set_leverage(self.symbol, target)
            after = await self.x.fetch_leverage(self.symbol)
            restored = await self.x.set_leverage(self.symbol, before)
            seen = f"set {target}: {_setting(outcome)}, read {after}"
            if not isinstance(restored, Applied):
                seen += f"; restoring {before}: {_setting(restored)}"
            ok = isinstance(outcome, Applied) and after == target
            self.record(name, facts, f"Applied, read {target}", seen, ok)

        await self.attempt(name, facts, "Applied, read back", leverage)

    async def check_margin_mode(self) -> None:
        name = "margin mode set, read back"
        if not self.x.capabilities.margin_mode_per_symbol:
            facts = self._facts.margin_mode

            async def read() -> None:
                mode = await self.x.fetch_margin_mode(self.symbol)
                outcome = await self.x.set_margin_mode(self.symbol, mode)
                seen = f"account's {mode.value}; set per symbol: {_setting(outcome)}"
                ok = isinstance(outcome, Rejected) and outcome.reason is RejectReason.NOT_SUPPORTED
                self.record(name, facts, "read; per-symbol set not supported", seen, ok)

            await self.attempt(name, facts, "read", read)
            return
        facts = self._facts.margin_mode
        held = "".join(f", {code}" for code in sorted(self.x.dialect.already_done_codes))

        async def same() -> None:
            mode = await self.x.fetch_margin_mode(self.symbol)
            outcome = await self.x.set_margin_mode(self.symbol, mode)
            after = await self.x.fetch_margin_mode(self.symbol)
            seen = f"set {mode.value} (held): {_setting(outcome)}, read {after.value}"
            ok = isinstance(outcome, Applied) and not outcome.changed and after is mode
            self.record(name, facts, f"Applied (unchanged{held}), read the same", seen, ok)

        await self.attempt(name, facts, "Applied, read back", same)

    # ------------------------------------------------------------------ orders

    async def check_unknown_client_id(self) -> None:
        facts = self._facts.unknown_client_id
        name = "unknown client id look-up"

        async def look() -> None:
            found = await self.x.fetch_order_by_client_id(self.symbol, self.cid("none"))
            seen = "none" if found is None else f"an order: {found.order_id}"
            self.record(name, facts, "none", seen, found is None)

        await self.attempt(name, facts, "none", look)

    async def _carried_stop(self, rules: MarketRules) -> Decimal | None:
        """The stop the check's entry carries where the venue lets an entry carry one
        (`entry_stop`): far below the mark, so it never fires during the check."""
        if not self.x.capabilities.entry_stop:
            return None
        mark = await self.x.fetch_mark_price(self.symbol)
        return price_for(rules, mark * Decimal("0.8"), Rounding.DOWN)

    async def open_position(
        self, rules: MarketRules, *, carried: Decimal | None = None
    ) -> Order | None:
        facts = self._facts.entry_read_back
        name = "entry read back right after create"
        mark = await self.x.fetch_mark_price(self.symbol)
        quantity = smallest_quantity(rules, mark)
        cid = self.cid("e")
        self.opened = True  # from here on, clean-up closes what the check holds
        if carried is not None:
            outcome = await self.x.create_market_order(
                self.symbol, OrderSide.BUY, quantity, client_order_id=cid, stop_loss=carried
            )
        else:
            outcome = await self.x.create_market_order(
                self.symbol, OrderSide.BUY, quantity, client_order_id=cid
            )
        if not isinstance(outcome, Accepted):
            self.record(name, facts, "Accepted, found by client id", outcome_text(outcome), False)
            return None
        found = await self.x.fetch_order_by_client_id(self.symbol, cid)
        seen = f"{outcome.order.status.value} {outcome.order.filled}/{quantity}; " + (
            "look-up: none" if found is None else f"look-up: {found.status.value}"
        )
        ok = found is not None and found.order_id == outcome.order.order_id
        self.record(name, facts, "Accepted, found by client id", seen, ok)
        return outcome.order

    async def check_entry_stop(self, carried: Decimal) -> None:
        """The stop the entry carried is the position's stop once the entry filled (Bybit:
        the position's `stopLoss`): what the open relies on to keep a fill the venue lists
        late protected from its first instant."""
        facts = self._facts.entry_stop
        name = "entry's carried stop set on the position"
        expected = f"the position's stop at {carried}"

        async def look() -> None:
            held = await self._position()
            shown = None if held is None else held.stop_price
            seen = "no position" if held is None else f"the position's stop: {shown or 'none'}"
            self.record(name, facts, expected, seen, shown == carried)

        await self.attempt(name, facts, expected, look)

    async def check_stop_and_take_profit(
        self, rules: MarketRules, entry: Order, mark: Decimal
    ) -> Order | None:
        facts = self._facts.stop_and_take_profit
        name = "stop-loss and take-profit side by side"
        expected = "stop_market (stop-loss) and take_profit listed, each as itself"
        quantity = entry.filled or entry.quantity
        stop_at = price_for(rules, mark * Decimal("0.8"), Rounding.DOWN)
        profit_at = price_for(rules, mark * Decimal("1.2"), Rounding.UP)
        stop = await self.x.create_stop_order(
            self.symbol, OrderSide.SELL, quantity, stop_at, client_order_id=self.cid("s")
        )
        read_back = None
        if isinstance(stop, Accepted):
            read_back = await self.x.fetch_order_by_client_id(self.symbol, self.cid("s"))
        try:
            await self.x.client.create_order(
                to_venue(self.symbol),
                "market",
                "sell",
                str(quantity),
                None,
                {
                    "clientOrderId": self.cid("t"),
                    **self.x.dialect.profile.stop_params,
                    "takeProfitPrice": str(profit_at),
                    "reduceOnly": True,
                },
            )
        except Exception as exc:
            self.record(name, facts, expected, f"take-profit refused: {exc}", False)
            return stop.order if isinstance(stop, Accepted) else None
        listed = await self.x.fetch_open_orders(self.symbol)
        ours = {
            o.client_order_id: o for o in listed if (o.client_order_id or "").startswith(PREFIX)
        }
        sl, tp = ours.get(self.cid("s")), ours.get(self.cid("t"))
        seen = (
            f"stop {_kind(sl)}, take-profit {_kind(tp)}; stop read back right after create: "
            f"{'none' if read_back is None else read_back.status.value}"
        )
        ok = (
            sl is not None
            and sl.type is OrderType.STOP_MARKET
            and sl.is_stop_loss
            and tp is not None
            and tp.type is OrderType.TAKE_PROFIT
            and not tp.is_stop
            and read_back is not None
        )
        self.record(name, facts, expected, seen, ok)
        return tp

    # ------------------------------------------------------------------ clean-up

    async def remove_leftovers(self) -> int:
        """Cancel every open order a killed run left (its client id has the prefix), and
        close the position such a run held on this symbol. Returns how many were removed."""
        mine = [
            o
            for o in await self.x.fetch_open_orders(None)
            if (o.client_order_id or "").startswith(PREFIX)
        ]
        for order in mine:
            await self.x.cancel_order(order.symbol, order.order_id)
        held = await self._position()
        if held is not None and any(o.symbol == self.symbol for o in mine):
            await self._close(held.quantity, tag="xl")
            held = await self._position()
        if held is not None:
            raise VenueCheckError(
                f"{self.symbol} holds a position venue-check did not open "
                f"({held.side.value} {held.quantity}); close it or pick another --symbol"
            )
        if mine:
            self.say(f"removed {len(mine)} order(s) a killed run left")
        return len(mine)

    async def clean_up(self) -> None:
        """Cancel what this run placed, remove its position stop, close its position."""
        try:
            for order in await self.x.fetch_open_orders(self.symbol):
                if (order.client_order_id or "").startswith(PREFIX):
                    await self.x.cancel_order(self.symbol, order.order_id)
            if not self.opened:
                return
            held = await self._position()
            if held is None:
                return
            if held.stop_price is not None:
                await self.x.set_position_stop(self.symbol, None)
            await self._close(held.quantity, tag="x")
        except Exception as exc:
            self.say(f"clean-up failed ({exc}); the next run removes what is left")
            raise

    async def _position(self) -> VenuePosition | None:
        for position in await self.x.fetch_positions():
            if position.symbol == self.symbol:
                return position
        return None

    async def _close(self, quantity: Decimal, *, tag: str) -> None:
        await self.x.create_market_order(
            self.symbol, OrderSide.SELL, quantity, client_order_id=self.cid(tag), reduce_only=True
        )

    @property
    def _facts(self) -> CheckFacts:
        return self.x.dialect.check_facts


def smallest_quantity(rules: MarketRules, mark: Decimal) -> Decimal:
    """The smallest quantity the venue takes at `mark`: min quantity, min notional (+10 %
    for the mark moving between the look-up and the fill), a multiple of the step."""
    need = rules.min_notional * Decimal("1.1") / mark
    steps = (need / rules.step_size).to_integral_value(rounding=ROUND_CEILING)
    return max(rules.smallest_quantity, steps * rules.step_size)


def _kind(order: Order | None) -> str:
    if order is None:
        return "not listed"
    what = "stop-loss" if order.is_stop_loss else "not a stop-loss"
    return f"{order.type.value} ({what})"


def _setting(outcome: object) -> str:
    if isinstance(outcome, Applied):
        return "Applied" if outcome.changed else "Applied (unchanged)"
    return outcome_text(outcome)


def outcome_text(outcome: object) -> str:
    if isinstance(outcome, Accepted):
        return "Accepted"
    if isinstance(outcome, Rejected):
        return f"Rejected {outcome.reason.value} ({outcome.code})"
    return f"Unknown ({getattr(outcome, 'message', '')})"


def short_text(body: Any) -> str:
    if isinstance(body, dict):
        return "{" + ", ".join(f"{k}: {body[k]!r}" for k in sorted(body)) + "}"
    return repr(body)
