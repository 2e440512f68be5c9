"""Our own request limiter in front of every REST request to a venue: budgets and priorities.

ccxt's limiter spaces every request `rateLimit` ms apart in arrival order, so a stop asked
for after five entries leaves after them (0.8 s on Binance at ccxt's defaults). This one
holds the venue's published budgets instead (docs/venues.md, "Rate limits") and serves
waiting requests most urgent first (`RequestPriority`), first come first served within a
priority.

A budget is `limit` weight in any window of `window` seconds: a spent unit comes back one
window after it was spent (a token bucket whose tokens return a window after use), so no
window of that length — sliding, and so also the venue's fixed one — ever holds more than
`limit`. A request may cost weight in several budgets (Binance: the IP's request weight and
the account's order counts); it leaves when it fits in all of them.

The serving rule: waiting requests are taken in order (priority, then arrival). One that
fits leaves; one that does not keeps its weight reserved in every budget it needs, so a less
urgent request never spends weight a more urgent one is waiting for. A less urgent request
that fits beside those reservations leaves — a query on Bybit's position endpoint does not
wait for a stop held by the order endpoint's 10 per second.

The venue's own count: other clients on the same key or IP (another bot, a person's script,
`venue-check`) spend the same budgets, so our count alone runs low. Every answer's rate-limit
headers (Binance `X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`/`-1M`; Bybit
`X-Bapi-Limit-Status` per endpoint) are read by the venue's `VenueLimits.read` into
`VenueCount`s, and a budget's count is the larger of ours and the venue's when it answered,
moved by ours since (what we spend adds, what leaves our window takes away), until the
venue's window ends. A budget keeps `reserve` of its limit
for stops: a less urgent request leaves only while the count stays within `limit - reserve`,
so a venue count running ahead of ours slows entries, queries and sweeps, not stops. A
rate-limit refusal (HTTP 429; Bybit's retCode 10006) closes the budgets the request was
charged to, stops included, until the venue's `Retry-After` or reset time (else one window):
sending more would earn an IP ban.

An IP ban (HTTP 418) stops every request until the ban ends: none is sent meanwhile (one
sent would lengthen the ban), and those waiting are refused.

Time comes from the `Clock` port, so tests run it in virtual time.
"""

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from tradecore.adapters.ccxt.errors import IpBanned, ban_end
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import RequestPriority

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

Costs = Mapping[str, int]
# (HTTP method, the venue path as ccxt names it, ccxt's api section, the request's params)
Weigh = Callable[[str, str, Any, Mapping[str, Any]], Costs]


@attrs.frozen(kw_only=True)
class Budget:
    """At most `limit` weight in any `window` seconds; `source` says where the figure is from.
    `reserve` of it is kept for stops (`RequestPriority.STOP`): less urgent requests leave
    only while the budget's count stays within `limit - reserve`."""

    name: str
    limit: int
    window: float
    source: str = ""
    reserve: int = 0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.reserve < self.limit:
            raise ValueError(f"budget {self.name!r}: reserve {self.reserve} not in [0, limit)")


@attrs.frozen(kw_only=True)
class VenueCount:
    """What the venue says it has counted in one budget (its answer's headers): `used` in the
    window that ends at `until` (None: one of the budget's windows from when it was heard)."""

    budget: str
    used: int
    until: datetime | None = None


@attrs.frozen(kw_only=True)
class Heard:
    """What one answer says of the venue's rate limits: its counts, and whether it refused
    the request for its rate (`refused`, until `retry_at` if it says; `closes` names the
    budgets the refusal is about, None: every budget the request was charged to)."""

    counts: tuple[VenueCount, ...] = ()
    refused: bool = False
    retry_at: datetime | None = None
    closes: tuple[str, ...] | None = None


# (the answer's URL path, its HTTP status, its headers, its body text, now)
Read = Callable[[str, int, Mapping[str, str], str, datetime], Heard]


def _free(method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
    return {}


def _deaf(path: str, status: int, headers: Mapping[str, str], body: str, now: datetime) -> Heard:
    return Heard(refused=status == 429)


@attrs.frozen(kw_only=True)
class VenueLimits:
    """A venue's budgets, what each request costs in them, and how its answers' headers
    say what the venue has counted (`read`)."""

    budgets: tuple[Budget, ...] = ()
    weigh: Weigh = _free
    read: Read = _deaf

    def with_limit(self, name: str, limit: int, *, reserve: int = 0) -> "VenueLimits":
        """The same limits with budget `name` set to `limit` and `reserve` (tests, tighter
        accounts)."""
        if name not in {b.name for b in self.budgets}:
            raise ValueError(f"no budget named {name!r}; known: {[b.name for b in self.budgets]}")
        budgets = [
            attrs.evolve(b, limit=limit, reserve=reserve) if b.name == name else b
            for b in self.budgets
        ]
        return attrs.evolve(self, budgets=tuple(budgets))


NO_LIMITS = VenueLimits()  # the 418 gate only (in-process loopback tests in virtual time)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICRO


class _Window:
    """What was spent in one budget over its last window, by our count and the venue's.

    The venue's count is kept as what it counted beyond ours when it answered (`others`:
    other clients' spending), until its window ends; the budget's count is ours plus that —
    at the answer, the larger of the two counts, and from then on ours moves it: a unit we
    spend adds, a unit of ours that leaves the window takes away. A newer answer replaces
    the estimate (a rolling window forgets what the other client spent a window ago); within
    one fixed window (the same `until`) the larger holds, whatever order answers arrive in.
    """

    def __init__(self, budget: Budget) -> None:
        self.limit = budget.limit
        self.reserve = budget.reserve
        self.span = round(budget.window * 1_000_000)
        self.spent: deque[tuple[int, int]] = deque()  # (when, weight), oldest first
        self.used = 0
        self.others = 0  # the venue's count beyond ours, until `others_until`
        self.others_until = 0
        self.closed_until = 0  # a rate-limit refusal: nothing leaves before then

    def cap(self, urgent: bool) -> int:
        return self.limit if urgent else self.limit - self.reserve

    def expire(self, now: int) -> None:
        while self.spent and self.spent[0][0] + self.span <= now:
            self.used -= self.spent.popleft()[1]
        if self.others_until <= now:
            self.others = 0
        if self.closed_until <= now:
            self.closed_until = 0

    @property
    def count(self) -> int:
        """Ours plus what the venue counted beyond ours (after `expire`)."""
        return self.used + self.others

    def fits(self, weight: int, urgent: bool) -> bool:
        return not self.closed_until and self.count + weight <= self.cap(urgent)

    def spend(self, now: int, weight: int) -> None:
        self.spent.append((now, weight))
        self.used += weight

    def hear(self, now: int, used: int, until: int) -> None:
        """The venue counted `used` in a window ending at `until`."""
        if until <= now:
            return
        beyond = max(0, used - self.used)
        if until == self.others_until:  # the same fixed window: its count only grows
            beyond = max(beyond, self.others)
        self.others, self.others_until = beyond, until

    def close(self, until: int) -> None:
        self.closed_until = max(self.closed_until, until)

    def _ours_free(self, needed: int, cap: int) -> int | None:
        """When our own spending leaves room for `needed` (None: it never can)."""
        excess = self.used + needed - cap
        if excess <= 0:
            return 0
        if needed > cap:
            return None
        for when, spent in self.spent:
            excess -= spent
            if excess <= 0:
                return when + self.span
        raise AssertionError("a weight above the budget's limit was let in")

    def free_at(self, now: int, weight: int, urgent: bool) -> int:
        """When `weight` will fit (after `expire`, with nothing more spent meanwhile):
        either ours leaves room beside the others' count, or the others' count ends."""
        cap = self.cap(urgent)
        beside = self._ours_free(weight + self.others, cap)
        alone = self._ours_free(weight, cap)
        assert alone is not None, "a weight above the budget's cap was let in"
        due = max(alone, self.others_until) if self.others else alone
        if beside is not None:
            due = min(due, beside)
        return max(due, self.closed_until, now)


@attrs.define(eq=False)
class _Waiter:
    priority: int
    seq: int
    costs: dict[str, int]
    future: "asyncio.Future[None]"

    @property
    def key(self) -> tuple[int, int]:
        return (self.priority, self.seq)


class RequestLimiter:
    """Holds each request until the venue's budgets have room, most urgent first."""

    def __init__(self, clock: Clock, limits: VenueLimits = NO_LIMITS, *, venue: str = "") -> None:
        self._clock = clock
        self._limits = limits
        self._venue = venue
        self._windows = {b.name: _Window(b) for b in limits.budgets}
        self._queue: list[_Waiter] = []  # sorted by (priority, arrival)
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: int | None = None
        self._banned_until: datetime | None = None
        self.held = 0  # requests that had to wait for a budget, since start
        self.refusals = 0  # rate-limit refusals the venue answered, since start
        self.counted = 0  # answers that carried the venue's count, since start

    @property
    def waiting(self) -> int:
        """How many requests are held back right now."""
        return len(self._queue)

    @property
    def banned_until(self) -> datetime | None:
        return self._banned_until

    def costs(self, method: str, path: str, api: Any, params: Mapping[str, Any]) -> Costs:
        """What a request costs in this venue's budgets."""
        return self._limits.weigh(method, path, api, params)

    async def acquire(self, priority: RequestPriority, costs: Costs) -> None:
        """Return when a request costing `costs` may be sent; raise `IpBanned` during a ban."""
        self._refuse_while_banned()
        wanted = {name: weight for name, weight in costs.items() if weight > 0}
        for name, weight in wanted.items():
            window = self._windows.get(name)
            if window is None:
                raise ValueError(f"{self._venue}: no budget named {name!r}")
            cap = window.cap(priority == RequestPriority.STOP)
            if weight > cap:
                raise ValueError(
                    f"{self._venue}: a request of weight {weight} can never fit in budget "
                    f"{name!r} of {cap} (limit {window.limit}, {window.reserve} kept for "
                    "stops); raise the budget or lower the weight"
                )
        waiter = _Waiter(
            int(priority), next(self._seq), wanted, asyncio.get_running_loop().create_future()
        )
        bisect.insort(self._queue, waiter, key=lambda w: w.key)
        self._dispatch()
        if waiter.future.done():
            waiter.future.result()  # served at once (or refused): no suspension
            return
        self.held += 1
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter in self._queue:
                self._queue.remove(waiter)
                self._dispatch()  # what it blocked may go now
            raise

    def read(self, path: str, status: int, headers: Mapping[str, str], body: str) -> Heard:
        """What an answer's headers (and body) say of the venue's counts."""
        return self._limits.read(path, status, headers, body, self._clock.now())

    def hear(self, costs: Costs, heard: Heard) -> None:
        """Take in what the venue said in an answer to a request that cost `costs`: each
        budget's count becomes the larger of ours and the venue's until its window ends; a
        rate-limit refusal closes the budgets it is about (every one the request was charged
        to, unless the venue names them) until its retry time, else for one window."""
        now = self._clock.now()
        at = _micros(now)
        if heard.counts:
            self.counted += 1
        for count in heard.counts:
            window = self._windows.get(count.budget)
            if window is None:
                continue
            window.expire(at)
            until = window.span + at if count.until is None else _micros(count.until)
            window.hear(at, count.used, until)
        if heard.refused:
            closes = heard.closes
            if closes is None:
                closes = tuple(name for name, weight in costs.items() if weight > 0)
            for name in closes:
                window = self._windows.get(name)
                if window is None:
                    continue
                until = window.span + at if heard.retry_at is None else _micros(heard.retry_at)
                window.close(until)
            self.refusals += 1
        if heard.counts or heard.refused:
            self._dispatch()  # re-arm the wake-up for the venue's windows

    def venue_count(self, name: str) -> int:
        """A budget's count now: ours, plus what the venue counted beyond ours."""
        window = self._windows[name]
        window.expire(_micros(self._clock.now()))
        return window.count

    def note(self, error: Exception) -> None:
        """Look at a failed request's error: an IP ban (418) closes the gate until it ends."""
        end = ban_end(error, self._clock.now())
        if end is not None:
            self.ban(end)

    def ban(self, until: datetime) -> None:
        """Send nothing before `until`; refuse everything waiting now."""
        if self._banned_until is not None and until <= self._banned_until:
            return
        self._banned_until = until
        queued, self._queue = self._queue, []
        for waiter in queued:
            if not waiter.future.done():
                waiter.future.set_exception(self._banned_error(until))

    def _banned_error(self, until: datetime) -> IpBanned:
        return IpBanned(f"{self._venue}: the IP is banned until {until.isoformat()}; not sent")

    def _refuse_while_banned(self) -> None:
        """During an IP ban every request is refused here, unsent: one sent extends the
        ban ("IP bans are tracked and scale in duration for repeat offenders", Binance
        USDⓈ-M General Info, Limits). Refused before sending, a command is `Rejected`
        (rate limited, retryable), a query `ExchangeUnavailable(rate_limited)`."""
        until = self._banned_until
        if until is None:
            return
        if self._clock.now() >= until:
            self._banned_until = None
            return
        raise self._banned_error(until)

    def _dispatch(self) -> None:
        """Let go every waiting request that fits beside what those ahead of it need.

        Taken in order (priority, arrival): one that fits leaves. One that does not keeps its
        weight reserved in every budget it shares with those behind it — where it has room,
        they may use only what is left beyond its weight; where it has none, nothing.
        """
        now = _micros(self._clock.now())
        for window in self._windows.values():
            window.expire(now)
        reserved: dict[str, int] = {}
        closed: set[str] = set()
        wake: int | None = None
        for waiter in list(self._queue):
            if waiter.future.done():  # cancelled meanwhile
                self._queue.remove(waiter)
                continue
            urgent = waiter.priority == RequestPriority.STOP
            room = {
                name: name not in closed
                and self._windows[name].fits(weight + reserved.get(name, 0), urgent)
                for name, weight in waiter.costs.items()
            }
            if all(room.values()):
                for name, weight in waiter.costs.items():
                    self._windows[name].spend(now, weight)
                self._queue.remove(waiter)
                waiter.future.set_result(None)
                continue
            due = self._due(now, waiter, reserved, closed)
            if due is not None:
                wake = due if wake is None else min(wake, due)
            for name, weight in waiter.costs.items():
                if room[name]:
                    reserved[name] = reserved.get(name, 0) + weight
                else:
                    closed.add(name)
        self._arm(now, wake)

    def _due(
        self, now: int, waiter: _Waiter, reserved: Mapping[str, int], closed: set[str]
    ) -> int | None:
        """When `waiter` will have room, if only time stands in its way (None: someone ahead
        of it does, and that one's own wake-up will look again)."""
        urgent = waiter.priority == RequestPriority.STOP
        due = 0
        for name, weight in waiter.costs.items():
            window = self._windows[name]
            needed = weight + reserved.get(name, 0)
            if name in closed or needed > window.cap(urgent):
                return None
            if not window.fits(needed, urgent):
                due = max(due, window.free_at(now, needed, urgent))
        return due

    def _arm(self, now: int, wake: int | None) -> None:
        if wake is None or (self._timer_at is not None and self._timer_at <= wake):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = wake
        self._timer = asyncio.get_running_loop().create_task(self._wake(wake - now))

    async def _wake(self, micros: int) -> None:
        await self._clock.sleep(micros / 1_000_000)
        self._timer, self._timer_at = None, None
        self._dispatch()
