"""Clocks and id generators: the real ones, and the virtual ones tests and paper trading run on.

`VirtualClock` moves only when told (`advance`, `run_until`). Everything that waits on it —
`sleep()` callers and `call_at()` timers such as a price path — is woken in deadline order
(ties in the order they were registered), and the event loop is allowed to settle after each
wake-up, so a set of asyncio tasks built on the `Clock` port runs deterministically in
virtual time.
"""

import asyncio
import hashlib
import heapq
import itertools
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# Upper bound on event-loop passes while settling; only a task that never suspends on a
# future would exhaust it, and then the clock moves on rather than hanging the test.
_MAX_SETTLE_PASSES = 10_000


class SystemClock:
    """Wall-clock UTC time and `asyncio.sleep`."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: datetime, callback: Callable[[], None]) -> "TimerHandle":
        """Run `callback` at `when` (wall time) on the running event loop."""
        delay = max(0.0, (when - self.now()).total_seconds())
        handle = TimerHandle()
        loop_handle = asyncio.get_running_loop().call_later(delay, handle.fire_if_live, callback)
        handle.on_cancel = loop_handle.cancel
        return handle


class TimerHandle:
    """A scheduled callback that can be cancelled before it runs."""

    def __init__(self) -> None:
        self.cancelled = False
        self.on_cancel: Callable[[], None] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self.on_cancel is not None:
            self.on_cancel()

    def fire_if_live(self, callback: Callable[[], None]) -> None:
        if not self.cancelled:
            callback()


class VirtualClock:
    """A clock whose time moves only when `advance` or `run_until` is called.

    `sleep(s)` parks the caller until virtual time reaches now + s; `call_at(t, fn)` runs a
    plain callback at t. Both share one queue ordered by (deadline, registration order).
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock start must be timezone-aware (UTC)")
        self._now = start
        self._queue: list[tuple[datetime, int, asyncio.Future[None] | TimerHandle, object]] = []
        self._seq = itertools.count()
        self._moving = False

    def now(self) -> datetime:
        return self._now

    @property
    def pending(self) -> int:
        """How many sleepers and timers are waiting (cancelled ones included until reached)."""
        return len(self._queue)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now + timedelta(seconds=seconds)
        heapq.heappush(self._queue, (deadline, next(self._seq), future, None))
        await future

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle:
        """Run `callback` when virtual time reaches `when` (on the next move if already past)."""
        handle = TimerHandle()
        heapq.heappush(self._queue, (max(when, self._now), next(self._seq), handle, callback))
        return handle

    def next_deadline(self) -> datetime | None:
        return self._queue[0][0] if self._queue else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking everything due on the way, in order."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards ({seconds} s)")
        await self.run_until(self._now + timedelta(seconds=seconds))

    async def run_until(
        self, until: datetime, *, settling: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Move time to `until`, waking sleepers and timers due on the way in deadline order.

        `settling` lets the loop settle after each wake-up (`settle` by default; a driver
        that never waits on threads may pass `settle_ready`, which skips the empty passes)."""
        if until < self._now:
            raise ValueError(f"cannot move a clock backwards from {self._now} to {until}")
        if self._moving:
            # Two drivers interleaving their moves would make the order depend on scheduling.
            raise RuntimeError("the virtual clock is already being advanced by another caller")
        self._moving = True
        try:
            await self._run_until(until, settling or settle)
        finally:
            self._moving = False

    async def _run_until(self, until: datetime, settling: Callable[[], Awaitable[None]]) -> None:
        # settle_ready, inline: the loop's ready queue read here, no coroutine per empty settle
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        if settling is settle_ready and ready is not None:
            settling = settle
        else:
            ready = None
        if ready is None or ready:
            await settling()
        while self._queue and self._queue[0][0] <= until:
            deadline, _, waiter, callback = heapq.heappop(self._queue)
            self._now = max(self._now, deadline)
            if isinstance(waiter, TimerHandle):
                if not waiter.cancelled and callback is not None:
                    callback()  # type: ignore[operator]
            elif not waiter.done():
                waiter.set_result(None)
            if ready is None or ready:
                await settling()
        self._now = until
        if ready is None or ready:
            await settling()

    async def run_all(self, *, limit: datetime | None = None) -> None:
        """Keep advancing to the next deadline until nothing waits (or `limit` is reached)."""
        while self._queue:
            deadline = self._queue[0][0]
            if limit is not None and deadline > limit:
                break
            await self.run_until(deadline)


async def settle() -> None:
    """Let every task that is ready run until the loop has nothing ready left.

    Virtual time must not move while a task woken at the current instant still has work to
    do at that instant (e.g. registering its next sleep); CPython's loop keeps that work in
    its ready queue, so we yield until it is empty.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if ready is None:  # a loop without the CPython internals: a generous fixed number of passes
        for _ in range(50):
            await asyncio.sleep(0)
        return
    await asyncio.sleep(0)
    passes = 0
    while ready and passes < _MAX_SETTLE_PASSES:
        await asyncio.sleep(0)
        passes += 1


async def settle_ready() -> None:
    """`settle`, without the pass it makes when nothing is ready: the same order of work for
    a driver whose tasks wait on nothing outside the loop (no thread, no socket, no real
    timer), and one loop pass less per empty settle. Never for a driver that waits for a
    thread to answer: with nothing ready it returns at once, without yielding."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    if ready is None or ready:
        await settle()


class RandomIds:
    """Short random base62 ids (collision odds ~ 1 in 62**12) and uuid4s."""

    def __init__(self, length: int = 12) -> None:
        if not 1 <= length <= 16:
            raise ValueError(f"id length must be 1..16, got {length}")
        self._length = length

    def new_id(self) -> str:
        return "".join(secrets.choice(_BASE62) for _ in range(self._length))

    def new_uuid(self) -> uuid.UUID:
        return uuid.uuid4()


class SeededIds:
    """Ids shaped like `RandomIds`' (base62, uuid4s), drawn from `random.Random(seed)`: one
    seed, one sequence. For runs in virtual time that must journal the same ids every time
    (paper sessions, simulations); never for a real account, whose ids must not repeat
    across runs."""

    def __init__(self, seed: int, length: int = 12) -> None:
        if not 1 <= length <= 16:
            raise ValueError(f"id length must be 1..16, got {length}")
        self._rng = random.Random(f"tradecore-ids-{seed}")
        self._length = length

    def new_id(self) -> str:
        choice = self._rng.choice
        return "".join(choice(_BASE62) for _ in range(self._length))

    def new_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)


class SequentialIds:
    """Predictable ids for tests: `prefix` + 1, 2, 3 … and uuids counting up from 1 in the
    prefix's own space (its high 64 bits from the prefix), so two processes of a test with
    different prefixes never share an event id — the journal stores an id once."""

    def __init__(self, prefix: str = "id") -> None:
        if not prefix.isalnum():
            raise ValueError(f"id prefix must be letters and digits, got {prefix!r}")
        self._prefix = prefix
        self._ids = itertools.count(1)
        self._uuids = itertools.count(1)
        self._space = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:8]) << 64

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def new_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._space | next(self._uuids))
