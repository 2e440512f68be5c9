"""`trade`: the kernel on a real venue (demo unless live was asked for twice), until stopped.

SIGINT or SIGTERM stops it gracefully: no new signals, opens in flight finish, stop and
trailing state persisted, events flushed, the instance lock released. Open positions stay on
the venue, protected by their stops. A second signal does not cut that short
(`tradecore.wiring.lifecycle`); a database or venue unreachable at start-up is waited for.
"""

import asyncio

from dependency_injector import providers
from loguru import logger

from tradecore.adapters.clock import SystemClock
from tradecore.app.kernel import Kernel, RecoveryReport
from tradecore.app.leverage import MarginModeMismatch
from tradecore.ports.exchange import ExchangeUnavailable
from tradecore.wiring.config import Config, Mode, Secrets
from tradecore.wiring.container import Container
from tradecore.wiring.errors import StartupError, StoppedEarly
from tradecore.wiring.lifecycle import resolve, shutdown, start_unless_stopped, stop_on_signals


async def run_trade(
    config: Config,
    secrets: Secrets,
    *,
    container: Container | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Trade until SIGINT / SIGTERM (or `stop` is set), then stop gracefully.

    The signals are handled from the first instruction: during start-up (waiting for the
    database or the venue, recovering) a signal is a clean stop too, exit 0.
    """
    clock = SystemClock()
    stop = stop or asyncio.Event()
    container = container or Container()
    container.config.override(config)
    container.secrets.override(secrets)
    container.clock.override(clock)
    container.stopping.override(providers.Object(stop))
    with stop_on_signals(stop):
        try:
            try:
                # the lock first: a second bot on the account is refused before a port is bound
                await resolve(container.lock())
                kernel = await resolve(container.kernel())
            except StoppedEarly as early:
                logger.info("{}", early)
                return
            await resolve(container.health_server())
            await resolve(container.telegram_commands())  # None unless configured
            report = await _start(kernel, stop, config)
            if report is None:
                return
            where = "LIVE (real money)" if config.mode is Mode.LIVE else "demo"
            logger.info(
                "trading on {} {} as account {!r}; recovery: {}",
                config.venue.value,
                where,
                config.account,
                report,
            )
            await stop.wait()
            logger.info("stopping: no new signals, finishing opens in flight")
            await kernel.stop("signal")
        finally:
            await shutdown(container)


async def _start(kernel: Kernel, stop: asyncio.Event, config: Config) -> RecoveryReport | None:
    try:
        return await start_unless_stopped(kernel, stop, "signal during start-up")
    except MarginModeMismatch as exc:  # the account's, not the bot's, to change
        raise StartupError(str(exc)) from None
    except ExchangeUnavailable as exc:  # only what waiting cannot mend: keys, permissions
        raise StartupError(
            f"{config.venue.value} refused the bot at start-up ({exc}); check that the keys "
            "belong to the account mode asks for (demo keys for demo) and may trade futures"
        ) from None
