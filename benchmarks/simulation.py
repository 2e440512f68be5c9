"""Virtual hours the simulator runs per wall minute on its small world (3-5 symbols).

    .venv/bin/python benchmarks/simulation.py [--seeds 10] [--workers 2]

Seeds 0..N-1 on both venues (lengths drawn 1-24 h, faults, people, crashes and outages on),
the whole kernel on the paper venue and in-memory SQLite. Prints, for one process, virtual
hours per wall minute and per CPU minute of that process (the box may be shared: the CPU
figure is what the simulator itself costs), then the wall figure with `--workers` processes.
The bar (issue 10) is >= 500 virtual hours per wall minute.
"""

import argparse
import asyncio
import time

from tradecore.domain.model import Venue
from tradecore.testing.simulation import plan_world, run_world
from tradecore.testing.simulation.batch import run_many


async def one_process(seeds: int) -> tuple[float, float, float]:
    hours = wall = cpu = 0.0
    for seed in range(seeds):
        for venue in (Venue.BINANCE, Venue.BYBIT):
            result = await run_world(plan_world(seed, venue))
            hours += result.world.hours
            wall += result.wall_seconds
            cpu += result.cpu_seconds
    return hours, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    hours, wall, cpu = asyncio.run(one_process(args.seeds))
    print(f"one process: {hours:.1f} virtual hours in {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"  {hours / wall * 60:.0f} virtual hours per wall minute")
    print(f"  {hours / cpu * 60:.0f} virtual hours per CPU minute")
    started = time.perf_counter()
    total = 0.0
    for venue in (Venue.BINANCE, Venue.BYBIT):
        total += sum(s.hours for s in run_many(range(args.seeds), venue, workers=args.workers))
    elapsed = time.perf_counter() - started
    print(f"{args.workers} processes: {total:.1f} virtual hours in {elapsed:.1f} s wall")
    print(f"  {total / elapsed * 60:.0f} virtual hours per wall minute")


if __name__ == "__main__":
    main()
