"""A deterministic simulator that attacks tradecore's promises (issue 10).

One seed fixes a whole world — marks, signals, venue latency and a schedule of incidents
(venue faults, people acting on the account, process crashes at any await, database and
signal-stream outages) — and the whole kernel runs in it, in virtual time, on the paper
venue and a real SQLite store, while `Checker` verifies every invariant after every venue
event. See docs/testing.md ("The simulator").

    result = await simulate_seed(7, Venue.BINANCE)
    print(report(result))
"""

from .invariants import INVARIANTS, Checker, Excuse, Violation, Windows
from .simulator import SeedResult, Simulation, run_world, sim_settings, windows_for
from .world import (
    CRASH_POINTS,
    FAULT_KINDS,
    OUTAGES,
    PERSON_ACTIONS,
    Incident,
    Rates,
    World,
    plan_world,
)

__all__ = [
    "CRASH_POINTS",
    "FAULT_KINDS",
    "INVARIANTS",
    "OUTAGES",
    "PERSON_ACTIONS",
    "Checker",
    "Excuse",
    "Incident",
    "Rates",
    "SeedResult",
    "Simulation",
    "Violation",
    "Windows",
    "World",
    "plan_world",
    "run_world",
    "sim_settings",
    "windows_for",
]
