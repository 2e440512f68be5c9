"""Paper determinism: the same inputs and seed, run several times, give the same journal.

A paper session of ~1,000 positions (many quiet symbols, so most positions age out), run
`--runs` times, each in its own process on a fresh SQLite file. Prints per run the positions,
the aged exits and the SHA-256 of the events table (every column, in insertion order); the
runs must agree on all three. It takes minutes: run it by hand, not in CI.

    .venv/bin/python benchmarks/paper_determinism.py                 # ~1,000 positions, 3 runs
    .venv/bin/python benchmarks/paper_determinism.py --symbols 60 --hours 10 --runs 2
"""

import argparse
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def write_prices(path: Path, *, symbols: int, hours: float, seed: int) -> None:
    """One mark a minute per symbol; quiet walks, so positions live long enough to age."""
    rng = random.Random(seed)
    marks = {f"Q{i:03d}USDT": rng.uniform(1, 500) for i in range(symbols)}
    minutes = int(hours * 60)
    with path.open("w", encoding="utf-8") as out:
        out.write("timestamp,symbol,mark\n")
        for minute in range(minutes + 1):
            at = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for symbol, mark in marks.items():
                marks[symbol] = mark * (1 + rng.gauss(0, 0.0007))
                out.write(f"{at},{symbol},{marks[symbol]:.6g}\n")


CONFIG = """
[logging]
file = ""
level = "ERROR"

[paper]
seed = {seed}
balance = 100000

[trading.sizing]
position_size_usd = 100
max_open_positions = {open_positions}
max_exposure_usd = 1000000

[trading.waves]
max_trades_per_wave = 10
"""


def digest(database: Path) -> tuple[str, int]:
    with sqlite3.connect(database) as connection:
        columns = [r[1] for r in connection.execute("PRAGMA table_info(events)")]
        rows = connection.execute(f"SELECT {', '.join(columns)} FROM events ORDER BY seq")
        sha = hashlib.sha256()
        count = 0
        for row in rows:
            sha.update(repr(row).encode())
            count += 1
    return sha.hexdigest()[:16], count


def run(folder: Path, prices: Path, config: Path, number: int) -> dict[str, object]:
    database = folder / f"run{number}.db"
    command = [
        sys.executable, "-m", "runner", "paper", "--config", str(config),
        "--prices", str(prices), "--database-url", f"sqlite:///{database}",
        "--no-progress", "--json",
    ]  # fmt: skip
    env = {**os.environ, "TRADECORE_CONFIG": ""}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run {number} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    sha, events = digest(database)
    return {
        "positions": summary["positions"],
        "aged_exits": summary["aged_exits"],
        "events": events,
        "digest": sha,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=150)
    parser.add_argument("--hours", type=float, default=30)
    parser.add_argument("--open-positions", type=int, default=100)  # Binance cap (story 10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="determinism-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        prices = folder / "prices.csv"
        write_prices(prices, symbols=args.symbols, hours=args.hours, seed=args.seed)
        config = folder / "config.toml"
        config.write_text(
            CONFIG.format(seed=args.seed, open_positions=args.open_positions), encoding="utf-8"
        )
        results = []
        for number in range(1, args.runs + 1):
            result = run(folder, prices, config, number)
            results.append(result)
            print(f"run {number}: {json.dumps(result)}", flush=True)
    same = all(r == results[0] for r in results)
    print("identical" if same else "DIFFERENT")
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
