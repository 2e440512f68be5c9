"""`python -m runner` (or `tradecore`): parse, load the configuration, wire, start.

Commands: `paper` (the default), `trade`, `migrate`, `check-config`, `monitor`, `report`,
`dashboard` (the live page, from a database), `simulate` (stress-test a configuration in the
deterministic simulator; 1 when it breaks), `venue-check` (the answer corpus's unverified facts
on a demo account; 1 on any mismatch).
Exit codes (docs/operations.md; the runbook's unit restarts on all but 2 and 3):
0 done or stopped by SIGINT / SIGTERM, 1 a failure at run time, 2 bad usage or configuration
(one line on stderr saying what and how to fix it), 3 another instance holds this account's
lock. What can heal — the database or the venue unreachable at start-up, a busy health port —
is waited for inside the process, never an exit.
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import attrs

from tradecore.adapters.database import migrate
from tradecore.adapters.dburl import InvalidDatabaseUrl, parse_database_url
from tradecore.adapters.paper.sample import DataFileError
from tradecore.adapters.reporting.accounts import Account, AccountNotFound, accounts_to_show
from tradecore.domain.model import Venue
from tradecore.ports.lock import AccountMismatch, LockHeld
from tradecore.wiring.config import (
    CONFIG_ENV,
    Config,
    ConfigError,
    Mode,
    Secrets,
    TestingSettings,
    check_for_trading,
    check_venue_fit,
    load_config,
    read_secrets,
)
from tradecore.wiring.errors import StartupError, StoppedEarly

OK, RUNTIME_FAILURE, BAD_USAGE, LOCK_HELD = 0, 1, 2, 3
COMMANDS = (
    "paper",
    "trade",
    "migrate",
    "check-config",
    "monitor",
    "report",
    "dashboard",
    "simulate",
    "venue-check",
)
DEFAULT_DATABASE = "sqlite:///var/tradecore.db"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(BAD_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"a TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tradecore",
        description="tradecore: a signal-driven futures bot. With no command: a paper session.",
        epilog="Run `tradecore COMMAND --help` for a command's options. docs/operations.md "
        "has the runbook, docs/configuration.md every setting.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    paper = commands.add_parser(
        "paper",
        help="a paper session on the simulated venue (default)",
        description="Run the real kernel on the simulated venue, in virtual time at full speed "
        "unless --realtime, on a bundled deterministic sample unless --signals/--prices.",
    )
    _config_option(paper)
    paper.add_argument("--venue", choices=[v.value for v in Venue], help="the simulated venue")
    paper.add_argument("--signals", type=Path, metavar="FILE", help="replay these signals (JSONL)")
    paper.add_argument(
        "--prices", type=Path, metavar="FILE", help="replay these marks (CSV timestamp,symbol,mark)"
    )
    paper.add_argument("--realtime", action="store_true", help="run on the wall clock")
    paper.add_argument("--hours", type=float, help="length of the sample (default 4)")
    paper.add_argument("--seed", type=int, help="the sample's seed (default 7)")
    paper.add_argument("--symbols", type=int, help="symbols in the sample (default 30)")
    paper.add_argument(
        "--database-url", metavar="URL", help="postgresql://… or sqlite:///… (default: a new file)"
    )
    paper.add_argument(
        "--health-port", type=int, metavar="PORT", help="serve /health and /metrics on this port"
    )
    paper.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    paper.add_argument("--json", action="store_true", help="print the summary as JSON")
    mig = commands.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Create or upgrade the schema of the configured database.",
    )
    _config_option(mig)
    mig.add_argument("--database-url", metavar="URL", help="instead of database.url")
    check = commands.add_parser(
        "check-config",
        help="validate the configuration and secrets, then exit",
        description="Load the file and the TRADECORE_* environment exactly as a start would.",
    )
    _config_option(check)
    trade = commands.add_parser(
        "trade",
        help="trade on a real venue: demo unless --live and the config both say live",
        description="Run the kernel on Binance USDⓈ-M or Bybit linear through ccxt, on the "
        'demo account unless --live is given AND the configuration says mode = "live". '
        "Stops gracefully on Ctrl-C / SIGTERM.",
    )
    _config_option(trade)
    trade.add_argument("--venue", choices=[v.value for v in Venue], help="default: config venue")
    trade.add_argument("--live", action="store_true", help="real money (config must agree)")
    trade.add_argument("--database-url", metavar="URL", help="instead of database.url")
    trade.add_argument("--health-port", type=int, metavar="PORT", help="instead of health.port")
    trade.add_argument(
        "--testing-exchange-url",
        metavar="URL",
        help="TESTS ONLY: trade against this loopback exchange (python -m "
        "tradecore.testing.loopback) instead of the venue; refused with --live",
    )
    monitor = commands.add_parser(
        "monitor",
        help="live monitor of a running bot, from its database",
        description="Every --interval seconds a snapshot from the database, printed as a table "
        "and appended to --jsonl; a final JSON report when it stops (docs/operations.md).",
    )
    _config_option(monitor)
    _accounts_options(monitor)
    monitor.add_argument("--interval", type=float, default=60.0, help="seconds (default 60)")
    monitor.add_argument("--jsonl", metavar="PATH", help="append each snapshot here")
    monitor.add_argument("--iterations", type=int, help="stop after this many snapshots")
    report = commands.add_parser(
        "report",
        help="post-run report from the database",
        description="Stop coverage, unprotected time, trailing, latencies, races, PnL and "
        "errors, from the database alone (docs/operations.md).",
    )
    _config_option(report)
    _accounts_options(report)
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.add_argument("--position", metavar="ID", help="one position's whole life")
    report.add_argument("--charts", metavar="DIR", help="write PNG charts into this directory")
    _dashboard_parser(commands)
    _simulate_parser(commands)
    _venue_check_parser(commands)
    return parser


def _venue_check_parser(commands: "argparse._SubParsersAction[_Parser]") -> None:
    check = commands.add_parser(
        "venue-check",
        help="check the venue's answers the corpus has not verified (demo unless --live)",
        description="With the smallest order on one symbol, check each fact the answer "
        "corpus marks unverified on the demo / testnet account, remove everything it opened, "
        "print a pass/fail table and journal it; exit 1 on any mismatch (docs/venues.md).",
    )
    _config_option(check)
    check.add_argument("--venue", choices=[v.value for v in Venue], help="default: config venue")
    check.add_argument("--symbol", default="BTCUSDT", help="a liquid symbol (default BTCUSDT)")
    check.add_argument("--live", action="store_true", help="real money (config must agree)")
    check.add_argument("--database-url", metavar="URL", help="instead of database.url")
    check.add_argument(
        "--hold",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the check's orders open this long before removing them (to look at them)",
    )
    check.add_argument(
        "--testing-exchange-url",
        metavar="URL",
        help="TESTS ONLY: check this loopback exchange instead of the venue; refused with --live",
    )


def _accounts_options(parser: argparse.ArgumentParser, *aliases: str) -> None:
    """One account's database, or the accounts of a PostgreSQL server (docs/operations.md,
    "Many accounts")."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        *aliases,
        metavar="URL",
        help="one account's database (default: database.url)",
    )
    where.add_argument(
        "--server-url",
        metavar="URL",
        help="a PostgreSQL server (postgresql://user@host/any_db): "
        "its accounts, one database each; with neither option below, all of them",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--all-accounts",
        action="store_true",
        help="every account on the server (of --server-url, else of the database URL)",
    )
    which.add_argument("--account", metavar="FINGERPRINT", help="this account on the server")


def _dashboard_parser(commands: "argparse._SubParsersAction[_Parser]") -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="the live dashboard page, from a database (of a running or a past session)",
        description="Serve the dashboard (positions, stops, waves, alerts, PnL, health) read "
        "from the database, pushed to the browser as it changes. 127.0.0.1 by default; "
        "another address needs TRADECORE_DASHBOARD_TOKEN (docs/operations.md).",
    )
    _config_option(dashboard)
    _accounts_options(dashboard, "--database")
    dashboard.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8081, help="default 8081")


def _simulate_parser(commands: "argparse._SubParsersAction[_Parser]") -> None:
    sim = commands.add_parser(
        "simulate",
        help="attack a configuration in the deterministic simulator (docs/testing.md)",
        description="Run seeds of the simulated world (faults, people, crashes, outages) against "
        "the whole kernel in virtual time; exit 1 when any seed breaks an invariant.",
    )
    _config_option(sim)
    sim.add_argument("--venue", choices=[v.value for v in Venue], default="binance")
    sim.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    sim.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    sim.add_argument("--seed", type=int, help="run this one seed only (a replay)")
    sim.add_argument("--hours", type=float, help="virtual hours per seed (default: drawn 1-24)")
    sim.add_argument("--plant", type=int, metavar="STORY", help="re-introduce a fixed bug")
    sim.add_argument("--incidents", metavar="N,N", help="keep only these incidents (a replay)")
    sim.add_argument("--no-reduce", action="store_true", help="do not reduce failing seeds")


def _simulate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tradecore.testing.simulation.command import parse_incidents, run_simulation

    settings = None
    if args.config or env.get(CONFIG_ENV):
        settings = load_config(args.config or env.get(CONFIG_ENV), env).trading
    return run_simulation(
        venue=Venue(args.venue),
        seeds=args.seeds,
        seed=args.seed,
        first_seed=args.first_seed,
        hours=args.hours,
        settings=settings,
        config=args.config,
        plant=args.plant,
        incidents=parse_incidents(args.incidents),
        reduce=not args.no_reduce,
    )


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    environment = os.environ if env is None else env
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "paper")
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    handlers: dict[str, Callable[[argparse.Namespace, Mapping[str, str]], int]] = {
        "paper": _paper,
        "trade": _trade,
        "monitor": _monitor,
        "report": _report,
        "dashboard": _dashboard,
        "migrate": _migrate,
        "check-config": _check_config,
        "simulate": _simulate,
        "venue-check": _venue_check,
    }
    try:
        return handlers[args.command](args, environment)
    except LockHeld as exc:
        return _fail(LOCK_HELD, str(exc))
    except StoppedEarly as exc:
        print(f"tradecore: {exc}", file=sys.stderr)
        return OK
    except (ConfigError, StartupError, DataFileError, InvalidDatabaseUrl, AccountMismatch) as exc:
        return _fail(BAD_USAGE, str(exc))
    except KeyboardInterrupt:
        return _fail(RUNTIME_FAILURE, "interrupted")


def _fail(code: int, message: str, stream: TextIO | None = None) -> int:
    print(f"tradecore: error: {message}", file=stream or sys.stderr)
    return code


def _load(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Secrets]:
    path = getattr(args, "config", None) or env.get(CONFIG_ENV) or None
    config = load_config(path, env)
    secrets = read_secrets(env, signals_token_file=config.signals.token_file)
    return config, secrets


def _log_secrets(secrets: Secrets, database_url: str | None) -> tuple[str, ...]:
    """Every secret, and the database password when the URL holds one."""
    password = urlsplit(database_url).password if database_url else None
    return (*secrets.values(), *((password,) if password else ()))


def _database_url(args: argparse.Namespace, config: Config) -> str:
    url = getattr(args, "database_url", None) or config.database.url
    if url == DEFAULT_DATABASE:
        Path("var").mkdir(exist_ok=True)  # the default lives under ./var/, made on first use
    return url


# -- paper -------------------------------------------------------------------------------------


def _paper(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tradecore.adapters.reporting.summary import render
    from tradecore.wiring.logs import configure_logging
    from tradecore.wiring.paper import PaperOptions, run_paper

    config, secrets = _load(args, env)
    if args.venue:
        config = attrs.evolve(config, venue=Venue(args.venue))
    config = attrs.evolve(config, mode=Mode.PAPER)
    check_venue_fit(config)
    _check_numbers(args)
    # The progress bar owns stderr below ERROR; the log file keeps everything.
    redactor = configure_logging(
        config.logging, _log_secrets(secrets, args.database_url), stderr_level="ERROR"
    )
    if args.database_url:
        parse_database_url(args.database_url)
    options = PaperOptions(
        signals=args.signals,
        prices=args.prices,
        realtime=args.realtime,
        hours=args.hours,
        seed=args.seed,
        symbols=args.symbols,
        database_url=args.database_url,
        health_port=args.health_port,
        progress=not args.no_progress,
    )
    try:
        summary = asyncio.run(run_paper(config, secrets, options))
    except (
        ConfigError,
        StartupError,
        DataFileError,
        InvalidDatabaseUrl,
        LockHeld,
        AccountMismatch,
        StoppedEarly,
    ):
        raise
    except Exception as exc:
        from loguru import logger

        logger.opt(exception=exc).error("the paper session failed")
        return _fail(RUNTIME_FAILURE, redactor.redact(f"the paper session failed: {exc!r}"))
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print(render(summary))
    return OK


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("hours", "symbols"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ConfigError(f"--{name} = {value} is not allowed; it must be above 0")
    if args.health_port is not None and not 0 <= args.health_port <= 65535:
        raise ConfigError(f"--health-port = {args.health_port} is not allowed; use 0 to 65535")
    for name in ("signals", "prices"):
        path = getattr(args, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"--{name} = {str(path)!r}: no such file")


# -- migrate, check-config --------------------------------------------------------------------


def _migrate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tradecore.wiring.container import database_problem

    config, _ = _load(args, env)
    url = _database_url(args, config)
    shown = parse_database_url(url).redacted()
    try:
        applied = asyncio.run(migrate(url))
    except InvalidDatabaseUrl:
        raise
    except Exception as exc:
        raise StartupError(database_problem(url, exc)) from None
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"migrations applied to {shown}: {names}")
    return OK


def _check_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config, secrets = _load(args, env)
    url = _database_url(args, config)
    shown = parse_database_url(url).redacted()
    check_for_trading(config, secrets)
    keys = "set" if all(secrets.keys_for(config.venue)) else "not set"
    print(
        f"configuration OK: mode {config.mode.value}, venue {config.venue.value}, "
        f"account {config.account!r}, database {shown}, health "
        f"{config.health.host}:{config.health.port}, API keys {keys}"
    )
    return OK


# -- trade -------------------------------------------------------------------------------------


def _trade(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tradecore.wiring.logs import configure_logging

    from .trade import run_trade

    config = _trading_config(args, env)
    secrets = _load(args, env)[1]
    redactor = configure_logging(config.logging, _log_secrets(secrets, config.database.url))
    try:
        asyncio.run(run_trade(config, secrets))
    except (ConfigError, StartupError, InvalidDatabaseUrl, LockHeld, AccountMismatch):
        raise
    except Exception as exc:
        from loguru import logger

        logger.opt(exception=exc).error("trading stopped by a failure")
        return _fail(RUNTIME_FAILURE, redactor.redact(f"trading stopped by a failure: {exc!r}"))
    return OK


def _trading_config(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """The configuration `trade` and `venue-check` run with, refused as `trade` refuses it:
    demo unless --live and the file's mode both say live, API keys present."""
    config, secrets = _load(args, env)
    if args.venue:
        config = attrs.evolve(config, venue=Venue(args.venue))
    if args.live and config.mode is not Mode.LIVE:
        raise ConfigError(
            f'--live needs mode = "live" in the configuration as well (it says '
            f"{config.mode.value!r}); both must ask for real money"
        )
    mode = Mode.LIVE if args.live else Mode.DEMO
    config = attrs.evolve(config, mode=mode)
    if args.health_port is not None:
        config = attrs.evolve(config, health=attrs.evolve(config.health, port=args.health_port))
    if args.database_url:
        config = attrs.evolve(config, database=attrs.evolve(config.database, url=args.database_url))
    if args.testing_exchange_url is not None:
        config = attrs.evolve(
            config, testing=TestingSettings(exchange_url=args.testing_exchange_url)
        )
    _database_url(args, config)
    check_for_trading(config, secrets)
    return config


def _venue_check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from tradecore.adapters.ccxt.venue_check import VenueCheckError
    from tradecore.wiring.logs import configure_logging

    from .venue_check import run_venue_check

    args.health_port = None
    config = _trading_config(args, env)
    secrets = _load(args, env)[1]
    redactor = configure_logging(config.logging, _log_secrets(secrets, config.database.url))
    try:
        passed = asyncio.run(
            run_venue_check(config, secrets, symbol=args.symbol.upper(), hold=args.hold)
        )
    except (ConfigError, StartupError, InvalidDatabaseUrl):
        raise
    except VenueCheckError as exc:
        return _fail(BAD_USAGE, str(exc))
    except Exception as exc:
        from loguru import logger

        logger.opt(exception=exc).error("venue-check failed")
        return _fail(RUNTIME_FAILURE, redactor.redact(f"venue-check failed: {exc!r}"))
    if passed is None:
        return _fail(RUNTIME_FAILURE, "stopped by a signal; the check removed what it opened")
    return OK if passed else RUNTIME_FAILURE


# -- monitor, report: the operator tools in runner/monitor.py and runner/report.py ------------


def _accounts(args: argparse.Namespace, config: Config, command: str) -> list[Account] | None:
    """The accounts asked for on a server (None: one database, `_database_url`); refused
    (exit 2) when the server cannot be read or holds no such account."""
    if not (args.server_url or args.all_accounts or args.account):
        return None
    server = args.server_url or _database_url(args, config)
    shown = parse_database_url(server).redacted()
    try:
        discovery, accounts = asyncio.run(accounts_to_show(server, args.account))
    except (InvalidDatabaseUrl, AccountNotFound) as exc:
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # the server: down, wrong address, refused
        raise ConfigError(f"{command}: cannot list the databases of {shown}: {exc!r}") from None
    for skipped in discovery.unreadable:
        print(f"{command}: skipped database {skipped.database}: {skipped.reason}", file=sys.stderr)
    return accounts


def _monitor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from .monitor import run_monitor, run_monitor_accounts

    config, _ = _load(args, env)
    accounts = _accounts(args, config, "monitor")
    if accounts is not None:
        return asyncio.run(
            run_monitor_accounts(
                accounts, interval=args.interval, jsonl_path=args.jsonl, iterations=args.iterations
            )
        )
    url = _database_url(args, config)
    parse_database_url(url)
    return asyncio.run(
        run_monitor(
            url,
            interval=args.interval,
            jsonl_path=args.jsonl,
            iterations=args.iterations,
            spool_path=config.database.spool_path,
        )
    )


def _report(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from .report import run_report, run_report_accounts

    config, _ = _load(args, env)
    accounts = _accounts(args, config, "report")
    if accounts is not None and len(accounts) == 1 and args.position:
        args.database_url = accounts[0].url  # one account's position: its story, as ever
    elif accounts is not None:
        if args.position:
            raise ConfigError("--position needs one account: add --account FINGERPRINT")
        return asyncio.run(run_report_accounts(accounts, fmt=args.format, chart_dir=args.charts))
    url = _database_url(args, config)
    parse_database_url(url)
    return asyncio.run(
        run_report(url, fmt=args.format, position_id=args.position, chart_dir=args.charts)
    )


def _dashboard(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from .dashboard import run_dashboard, run_dashboard_accounts

    config, secrets = _load(args, env)
    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port = {args.port} is not allowed; use 1 to 65535")
    accounts = _accounts(args, config, "dashboard")
    if accounts is not None:
        return asyncio.run(
            run_dashboard_accounts(
                accounts,
                host=args.host,
                port=args.port,
                token=secrets.dashboard_token,
                aged=config.trading.aged.params,
            )
        )
    url = _database_url(args, config)
    parse_database_url(url)
    return asyncio.run(
        run_dashboard(
            url,
            host=args.host,
            port=args.port,
            token=secrets.dashboard_token,
            aged=config.trading.aged.params,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
