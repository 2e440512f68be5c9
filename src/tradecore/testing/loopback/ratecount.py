"""What a loopback venue counts against each rate-limit budget, to send back as the venue's
own rate-limit headers (each dialect's `limit_headers`; docs/venues.md, "Rate limits").

Requests are charged with the ccxt dialect's published weights (`VenueLimits.weigh`, the
same table the adapter's limiter spends), so the loopback's count and the adapter's agree
unless another client spends the budget too: `others[budget]` is weight some other client
(another bot, a person's script) spent in every window, added to what the venue says.
"""

from collections import deque
from collections.abc import Mapping
from typing import Any

from tradecore.adapters.ccxt.limiter import VenueLimits


class RateCount:
    """Weight spent per budget: in fixed windows (`fixed`, Binance) or rolling ones (Bybit)."""

    def __init__(self, limits: VenueLimits, *, fixed: bool) -> None:
        self._limits = limits
        self._windows = {b.name: round(b.window * 1000) for b in limits.budgets}
        self.limit = {b.name: b.limit for b in limits.budgets}
        self._fixed = fixed
        self._spent: dict[str, deque[tuple[int, int]]] = {n: deque() for n in self._windows}
        self.others: dict[str, int] = {}

    def charge(self, method: str, path: str, params: Mapping[str, Any], now_ms: int) -> set[str]:
        """Charge one request (`path` as ccxt names it); the budgets it was charged to."""
        costs = self._limits.weigh(method, path, None, params)
        for name, weight in costs.items():
            if name in self._spent and weight > 0:
                self._spent[name].append((now_ms, weight))
        return {name for name, weight in costs.items() if weight > 0}

    def start(self, name: str, now_ms: int) -> int:
        """When the window holding `now_ms` began."""
        span = self._windows[name]
        return now_ms // span * span if self._fixed else now_ms - span

    def used(self, name: str, now_ms: int) -> int:
        """What the venue counts in the budget's window now: ours and the others'."""
        start = self.start(name, now_ms)
        spent = self._spent[name]
        while spent and spent[0][0] < start - self._windows[name]:
            spent.popleft()
        ours = sum(weight for at, weight in spent if at >= start and at <= now_ms)
        return ours + self.others.get(name, 0)

    def oldest(self, name: str, now_ms: int) -> int | None:
        """When the oldest spend still in the budget's window was made."""
        start = self.start(name, now_ms)
        return next((at for at, _ in self._spent[name] if at >= start), None)
