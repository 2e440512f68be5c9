"""Many seeds: run them, reduce a failing one's incidents to a 1-minimal schedule, print the
command that replays it, and count how often each fault, person action and crash happened.
"""

import collections
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TextIO, TypeVar

import attrs

from tradecore.app.settings import TradingSettings
from tradecore.domain.model import Venue

from .simulator import SeedResult, run_world
from .world import (
    CRASH_POINTS,
    FAULT_KINDS,
    INITIAL_STOP_CRASH,
    OUTAGES,
    PERSON_ACTIONS,
    RACES,
    Incident,
    World,
    plan_world,
)

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class SimOptions:
    venue: Venue
    hours: float | None = None  # None: each seed draws 1-24 h
    settings: TradingSettings | None = None
    config: str | None = None  # the --config file the settings came from (for the replay line)
    plant: int | None = None  # run under a planted bug (a story number)
    reduce: bool = True  # reduce a failing seed's incidents to a 1-minimal set
    only: frozenset[int] | None = None  # keep only these incidents (a reduced replay)


def world_of(seed: int, options: SimOptions) -> World:
    world = plan_world(seed, options.venue, hours=options.hours)
    if options.only is not None:
        kept = tuple(i for i in world.incidents if i.number in options.only)
        world = attrs.evolve(world, incidents=kept)
    return world


async def simulate_seed(seed: int, options: SimOptions) -> SeedResult:
    return await run_world(world_of(seed, options), options.settings, plant=options.plant)


def replay_command(
    seed: int, options: SimOptions, hours: float, incidents: Iterable[int] | None
) -> str:
    """The one command that replays a seed (with its reduced incidents, when given)."""
    parts = [
        "python -m runner simulate",
        f"--seed {seed}",
        f"--hours {hours:g}",
        f"--venue {options.venue.value}",
    ]
    if options.config:
        parts.append(f"--config {options.config}")
    if options.plant is not None:
        parts.append(f"--plant {options.plant}")
    if incidents is not None:
        parts.append(f"--incidents {','.join(str(n) for n in sorted(incidents)) or 'none'}")
    return " ".join(parts)


async def reduce_incidents(
    seed: int, options: SimOptions, result: SeedResult, *, budget: int = 200
) -> tuple[Incident, ...]:
    """A 1-minimal subset of the seed's incidents that still breaks the same invariant:
    removing any single one of them makes the run pass that invariant (delta debugging)."""
    assert result.first is not None
    target = result.first.invariant

    async def fails(kept: Sequence[Incident]) -> bool:
        world = attrs.evolve(result.world, incidents=tuple(kept))
        again = await run_world(world, options.settings, plant=options.plant)
        return any(v.invariant == target for v in again.violations)

    return tuple(await minimize(result.world.incidents, fails, budget=budget))


async def minimize(
    items: Sequence[T], fails: Callable[[Sequence[T]], Awaitable[bool]], *, budget: int = 200
) -> list[T]:
    """Delta debugging (ddmin): a subset of `items` on which `fails` still holds and from
    which no single item can be removed with `fails` still holding (1-minimal), within
    `budget` runs of `fails` (past it: the smallest failing subset found so far)."""
    runs = 0

    async def still(kept: Sequence[T]) -> bool:
        nonlocal runs
        runs += 1
        return await fails(kept)

    current = list(items)
    chunks = 2
    while len(current) >= 2 and runs < budget:  # drop whole chunks while it still fails
        size = max(1, len(current) // chunks)
        pieces = [current[i : i + size] for i in range(0, len(current), size)]
        for piece in pieces:
            rest = [i for i in current if i not in piece]
            if await still(rest):
                current = rest
                chunks = max(chunks - 1, 2)
                break
        else:
            if chunks >= len(current):
                break
            chunks = min(len(current), chunks * 2)
    changed = True
    while changed and runs < budget:  # then one at a time, until no single one can go
        changed = False
        for item in list(current):
            rest = [i for i in current if i is not item]
            if await still(rest):
                current = rest
                changed = True
    return current


@attrs.define
class BatchReport:
    results: list[SeedResult] = attrs.Factory(list)
    replays: dict[int, str] = attrs.Factory(dict)
    reduced: dict[int, tuple[Incident, ...]] = attrs.Factory(dict)
    totals: Counter[str] = attrs.Factory(Counter)

    @property
    def failed(self) -> list[SeedResult]:
        return [r for r in self.results if r.failed]

    @property
    def virtual_hours(self) -> float:
        return sum(r.world.hours for r in self.results)

    @property
    def wall_seconds(self) -> float:
        return sum(r.wall_seconds for r in self.results)


async def simulate(
    seeds: Iterable[int],
    options: SimOptions,
    *,
    out: TextIO | None = None,
    on_result: Callable[[SeedResult], None] | None = None,
) -> BatchReport:
    """Run every seed; print one line per seed, the replay of each failure, the counts."""
    stream = out or sys.stdout
    report = BatchReport()
    for seed in seeds:
        result = await simulate_seed(seed, options)
        report.results.append(result)
        report.totals.update(result.counts)
        if on_result is not None:
            on_result(result)
        print(seed_line(result), file=stream)
        if result.failed:
            kept = None
            if options.reduce and options.only is None:
                reduced = await reduce_incidents(seed, options, result)
                report.reduced[seed] = reduced
                kept = [i.number for i in reduced]
                for incident in reduced:
                    print(f"    needs {incident.describe()}", file=stream)
            elif options.only is not None:
                kept = sorted(options.only)
            replay = replay_command(seed, options, result.world.hours, kept)
            report.replays[seed] = replay
            for violation in result.violations[:5]:
                print(f"    {violation}", file=stream)
            print(f"    replay: {replay}", file=stream)
    print(
        counts_table(report.totals, title=f"totals over {len(report.results)} seeds"), file=stream
    )
    hours, wall = report.virtual_hours, report.wall_seconds
    speed = hours / wall * 60 if wall else 0.0
    print(
        f"{len(report.failed)} of {len(report.results)} seeds broke an invariant; "
        f"{hours:.1f} virtual hours in {wall:.1f} s ({speed:.0f} virtual hours per minute)",
        file=stream,
    )
    return report


def seed_line(result: SeedResult) -> str:
    world = result.world
    verdict = "ok" if not result.failed else f"BROKE {result.first.invariant}"  # type: ignore[union-attr]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    return (
        f"seed {world.seed} {world.venue.value} {world.hours:g} h "
        f"{len(world.symbols)} symbols {len(world.incidents)} incidents: {verdict} "
        f"({result.wall_seconds:.1f} s, journal {result.events} events {result.digest[:12]}) "
        f"[{counts}]"
    )


def expected_kinds() -> list[str]:
    """Every fault kind, person action, crash point and timed incident the CI seeds must each
    hit >= 20 times."""
    return [
        *(f"fault:{kind}" for kind in FAULT_KINDS),
        *(f"person:{action}" for action in PERSON_ACTIONS),
        *(f"crash:{point}" for point in CRASH_POINTS),
        *(f"outage:{name}" for name in OUTAGES),
        *(f"race:{name}" for name in RACES),
        INITIAL_STOP_CRASH,
    ]


def counts_table(counts: Counter[str], *, title: str) -> str:
    lines = [title]
    for name in expected_kinds():
        lines.append(f"  {counts.get(name, 0):6d}  {name}")
    for name, count in sorted(counts.items()):
        if name not in expected_kinds():
            lines.append(f"  {count:6d}  {name}")
    return "\n".join(lines)


@attrs.frozen(kw_only=True)
class Summary:
    """What a worker process sends back about one seed (picklable, small)."""

    seed: int
    venue: Venue
    hours: float
    violations: tuple[str, ...]
    invariants: tuple[str, ...]
    counts: dict[str, int]
    digest: str
    wall_seconds: float
    cpu_seconds: float

    @property
    def failed(self) -> bool:
        return bool(self.violations)


def _run_chunk(job: tuple[tuple[int, ...], Venue, float | None, int | None]) -> list[Summary]:
    import asyncio

    seeds, venue, hours, plant = job
    options = SimOptions(venue=venue, hours=hours, plant=plant, reduce=False)

    async def run() -> list[Summary]:
        done = []
        for seed in seeds:
            result = await simulate_seed(seed, options)
            done.append(
                Summary(
                    seed=seed,
                    venue=venue,
                    hours=result.world.hours,
                    violations=tuple(str(v) for v in result.violations),
                    invariants=tuple(dict.fromkeys(v.invariant for v in result.violations)),
                    counts=dict(result.counts),
                    digest=result.digest,
                    wall_seconds=result.wall_seconds,
                    cpu_seconds=result.cpu_seconds,
                )
            )
        return done

    return asyncio.run(run())


def run_many(
    seeds: Sequence[int],
    venue: Venue,
    *,
    hours: float | None = None,
    plant: int | None = None,
    workers: int = 2,
) -> list[Summary]:
    """Run `seeds` on `venue` in `workers` processes (1: in this one); summaries in seed order."""
    chunks = [tuple(seeds[i::workers]) for i in range(workers) if seeds[i::workers]]
    jobs = [(chunk, venue, hours, plant) for chunk in chunks]
    if workers <= 1:
        results = [_run_chunk(job) for job in jobs]
    else:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
            results = list(pool.map(_run_chunk, jobs))
    return sorted((s for chunk in results for s in chunk), key=lambda s: s.seed)


@attrs.frozen(kw_only=True)
class Caught:
    """A seed that breaks, under a planted bug, an invariant it keeps without it."""

    seed: int
    venue: Venue
    invariants: tuple[str, ...]  # broken under the plant only
    violation: str  # the first violation of one of them


def hunt(
    plant: int,
    seeds: Sequence[int],
    venues: Sequence[Venue] = (Venue.BINANCE, Venue.BYBIT),
    *,
    workers: int = 2,
) -> Caught | None:
    """Run `seeds` (each on every venue, in seed order) under planted bug `plant` in
    `workers` processes, and stop at the first that catches it: a seed that breaks an
    invariant under the plant that the same seed without it does not break. The seed
    without the plant is run only for a seed that broke under it. None: no seed caught it.
    """
    import concurrent.futures
    import multiprocessing

    planted = collections.deque((seed, venue) for seed in seeds for venue in venues)
    clean_wanted: collections.deque[tuple[int, Venue]] = collections.deque()
    suspects: dict[tuple[int, Venue], Summary] = {}
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(max(1, workers), mp_context=context)
    running: dict[concurrent.futures.Future[list[Summary]], int | None] = {}
    try:
        while planted or clean_wanted or running:
            while len(running) < max(1, workers) and (clean_wanted or planted):
                # a clean run settles a suspect: it goes before the next planted seed
                with_plant = not clean_wanted
                seed, venue = (planted if with_plant else clean_wanted).popleft()
                job = ((seed,), venue, None, plant if with_plant else None)
                running[pool.submit(_run_chunk, job)] = plant if with_plant else None
            done, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                ran_with = running.pop(future)
                [summary] = future.result()
                key = (summary.seed, summary.venue)
                if ran_with is not None:
                    if summary.failed:
                        suspects[key] = summary
                        clean_wanted.append(key)
                    continue
                under = suspects.pop(key)
                new = [i for i in under.invariants if i not in summary.invariants]
                if new:
                    first = next(v for v in under.violations if v.split(" ", 1)[0] in new)
                    return Caught(
                        seed=summary.seed,
                        venue=summary.venue,
                        invariants=tuple(new),
                        violation=first,
                    )
        return None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
