"""The process around the kernel: signals, start-up that can be stopped, and what exits.

From the first instruction to the last, SIGINT and SIGTERM mean one thing: stop gracefully.
The first one sets the stop; every later one is logged and ignored, so an impatient second
Ctrl-C can never abort the graceful stop half-way (opens in flight, no `bot_stopped`). What
can heal — a database or venue unreachable at start-up, a busy health port — is waited for
inside the process and ends cleanly on a signal. (SIGKILL stays the way to abandon a stop:
the next start recovers whatever it left in flight.)
"""

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

from dependency_injector import containers
from loguru import logger

from tradecore.app.kernel import Kernel, RecoveryReport, StartAbandoned

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT / SIGTERM set `stop` for as long as this block runs (the whole process)."""
    loop = asyncio.get_running_loop()

    def received(sig: signal.Signals) -> None:
        if stop.is_set():
            logger.warning(
                "{} again: already stopping (opens in flight finish, then bot_stopped is "
                "journaled); SIGKILL abandons the stop, the next start recovers",
                sig.name,
            )
            return
        logger.info("{}: stopping gracefully", sig.name)
        stop.set()

    installed = []
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, received, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None if `stop` is set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def start_unless_stopped(
    kernel: Kernel, stop: asyncio.Event, reason: str
) -> RecoveryReport | None:
    """`kernel.start()`; if `stop` is set meanwhile, the kernel is stopped (its start gives
    up its waits, or finishes recovering) and None is returned."""
    starting = asyncio.ensure_future(kernel.start())
    report = await unless_stopped(asyncio.shield(starting), stop)
    if report is not None:
        return report
    logger.info("stopping during start-up")
    await kernel.stop(reason)
    with contextlib.suppress(StartAbandoned):
        await starting
    return None


async def resolve(value: Any) -> Any:
    """A provider's value: awaited when it depends on an async resource."""
    if asyncio.isfuture(value) or asyncio.iscoroutine(value):
        return await value
    return value


async def shutdown(container: containers.Container) -> None:
    """Close every resource the container opened (`Container.shutdown_resources`)."""
    result = container.shutdown_resources()
    if result is not None:
        await result
