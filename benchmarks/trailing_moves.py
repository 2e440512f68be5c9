"""CPU cost of the trailing step when every mark moves the stop: the floor under
`benchmarks/reaction.py` (issue 12, item 8).

500 long positions, all trailing; 40 batches, each raising every mark by 0.5 (a new best price
per position, so each `on_mark` builds a new state and a `MoveStop`). Prints the CPU time per
moving step and what 500 of them cost: no stop command of a batch of 500 can leave sooner after
the batch's arrival than the steps before it, whatever the database. Run:

    .venv/bin/python benchmarks/trailing_moves.py
"""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradecore.domain.model import Side, Venue
from tradecore.domain.trailing import TrailingParams, on_mark, start_trailing

POSITIONS = 500
BATCHES = 40
START = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    params = TrailingParams()
    tick = Decimal("0.01")
    states = [
        start_trailing(
            position_id=f"p{i}",
            venue=Venue.BINANCE,
            symbol=f"S{i}USDT",
            side=Side.LONG,
            entry_price=Decimal("100"),
            quantity=Decimal("1"),
            opened_at=START,
            stop_price=Decimal("97"),
            params=params,
        )
        for i in range(POSITIONS)
    ]
    mark = Decimal("102")
    steps = moves = 0
    began = time.process_time()
    for batch in range(BATCHES):
        mark += Decimal("0.5")
        now = START + timedelta(seconds=60 * (batch + 1))
        for i, state in enumerate(states):
            states[i], commands = on_mark(state, mark, now, params, tick)
            steps += 1
            moves += bool(commands)
    cpu = time.process_time() - began
    per = cpu / steps
    print(f"{steps} steps, {moves} with a stop command")
    print(f"CPU per moving step: {per * 1e6:.1f} µs")
    print(f"{POSITIONS} moving steps (one batch): {per * POSITIONS * 1e3:.2f} ms of CPU")


if __name__ == "__main__":
    main()
