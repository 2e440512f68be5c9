"""`python -m tradecore.testing.loopback --venue binance|bybit --port P [--seed S] [--symbols ...]`

A standalone paper exchange for tests that run the real runner as a process
(docs/testing.md, "A loopback exchange as a process"). Stops on SIGINT / SIGTERM.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from tradecore.domain.model import Venue
from tradecore.testing.loopback.standalone import (
    ALTERATIONS,
    StandaloneExchange,
    WalkSettings,
    serve,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tradecore.testing.loopback",
        description="A loopback Binance fapi / Bybit v5 exchange on the paper engine, with a "
        "seeded random-walk mark feed and GET /__loopback/state. For tests only.",
    )
    parser.add_argument("--venue", choices=[v.value for v in Venue], required=True)
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--seed", type=int, default=7, help="the mark feed's seed")
    parser.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="default: all listed")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between marks")
    parser.add_argument(
        "--volatility", type=float, default=0.002, help="a step's deviation (fraction)"
    )
    parser.add_argument(
        "--alter",
        action="append",
        default=[],
        choices=ALTERATIONS,
        help="answer this corpus fact differently (venue-check's tests)",
    )
    args = parser.parse_args(argv)
    walk = WalkSettings(seed=args.seed, interval=args.interval, volatility=args.volatility)
    try:
        exchange = StandaloneExchange(
            Venue(args.venue), symbols=args.symbols, walk=walk, alter=args.alter
        )
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    asyncio.run(serve(exchange, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
