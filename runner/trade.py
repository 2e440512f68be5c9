"""`trade`: the kernel on a real venue (demo unless live was asked for twice), until stopped.

SIGINT or SIGTERM stops it gracefully: no new signals, opens in flight finish, stop and
trailing state persisted, events flushed, the instance lock released. Open positions stay on
the venue, protected by their stops.
"""

import asyncio

from loguru import logger

from tradecore.adapters.clock import SystemClock
from tradecore.ports.exchange import ExchangeUnavailable

from .config import Config, Mode, Secrets
from .container import Container
from .errors import StartupError
from .paper import resolve, shutdown, wait_for_end


async def run_trade(
    config: Config,
    secrets: Secrets,
    *,
    container: Container | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Trade until SIGINT / SIGTERM (or `stop` is set), then stop gracefully."""
    clock = SystemClock()
    container = container or Container()
    container.config.override(config)
    container.secrets.override(secrets)
    container.clock.override(clock)
    try:
        kernel = await resolve(container.kernel())
        await resolve(container.health_server())
        try:
            report = await kernel.start()
        except ExchangeUnavailable as exc:
            raise StartupError(
                f"cannot reach {config.venue.value} at start-up ({exc}); check the network, "
                "and that the keys belong to the account mode asks for (demo keys for demo)"
            ) from None
        where = "LIVE (real money)" if config.mode is Mode.LIVE else "demo"
        logger.info(
            "trading on {} {} as account {!r}; recovery: {}",
            config.venue.value,
            where,
            config.account,
            report,
        )
        await wait_for_end(clock, None, lambda: None, stop)
        logger.info("stopping: no new signals, finishing opens in flight")
        await kernel.stop("signal")
    finally:
        await shutdown(container)
