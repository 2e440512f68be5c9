"""`venue-check`: wire the check (tradecore.adapters.ccxt.venue_check) to the configured
venue and database, print its table, exit 1 on any mismatch (docs/venues.md)."""

import asyncio
import sys

from tradecore.adapters.clock import SystemClock
from tradecore.wiring.config import Config, Secrets
from tradecore.wiring.container import Container
from tradecore.wiring.lifecycle import resolve, shutdown, stop_on_signals, unless_stopped


async def run_venue_check(
    config: Config, secrets: Secrets, *, symbol: str, hold: float
) -> bool | None:
    """True when every fact is as the corpus documents it. SIGINT or SIGTERM (even where
    the shell started it with SIGINT ignored) cancels the run: the check removes what it
    opened, then None is returned."""
    from tradecore.adapters.ccxt.venue_check import VenueCheck, render

    container = Container()
    container.config.override(config)
    container.secrets.override(secrets)
    container.clock.override(SystemClock())
    try:
        events = await resolve(container.journal())
        exchange = await resolve(container.venue())
        check = VenueCheck(
            exchange,
            symbol=symbol,
            events=events,
            clock=container.clock(),
            ids=container.ids(),
            say=lambda line: print(line, file=sys.stderr, flush=True),
            hold=hold,
        )
        stop = asyncio.Event()
        with stop_on_signals(stop):
            report = await unless_stopped(check.run(), stop)
        if report is None:
            return None
        print(render(report), flush=True)
        return report.passed
    finally:
        await shutdown(container)
