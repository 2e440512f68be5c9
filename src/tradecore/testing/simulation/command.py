"""`python -m runner simulate`: the library side (the runner only parses and calls this)."""

import asyncio
import sys
from typing import TextIO

from tradecore.app.settings import TradingSettings
from tradecore.domain.model import Venue

from .batch import SimOptions, simulate


def run_simulation(
    *,
    venue: Venue,
    seeds: int = 1,
    seed: int | None = None,
    first_seed: int = 0,
    hours: float | None = None,
    settings: TradingSettings | None = None,
    config: str | None = None,
    plant: int | None = None,
    incidents: frozenset[int] | None = None,
    reduce: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run `seeds` seeds from `first_seed` (or the one `seed`); 1 if any broke an invariant."""
    options = SimOptions(
        venue=venue,
        hours=hours,
        settings=settings,
        config=config,
        plant=plant,
        reduce=reduce,
        only=incidents,
    )
    chosen = [seed] if seed is not None else list(range(first_seed, first_seed + seeds))
    report = asyncio.run(simulate(chosen, options, out=out or sys.stdout))
    return 1 if report.failed else 0


def parse_incidents(text: str | None) -> frozenset[int] | None:
    """`--incidents 3,7,9` (or `none`) as a set of incident numbers."""
    if text is None:
        return None
    if text.strip() in ("", "none"):
        return frozenset()
    return frozenset(int(part) for part in text.split(","))
