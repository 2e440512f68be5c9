"""The command line: help on every command, exit codes, and bad input refused in one line.

Each case runs `runner.__main__.main` in-process, as `python -m runner` would, inside a
temporary working directory (the runner writes under ./var/).
"""

import asyncio
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from runner.__main__ import COMMANDS, main
from tradecore.adapters.sqlite.lock import FileInstanceLock

NO_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    # the runner owns loguru's and logging's sinks while it runs; give them back
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], force=True)


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_help_is_available_for_the_runner_and_every_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"], env=NO_ENV) == 0
    overview = capsys.readouterr().out
    for command in COMMANDS:
        assert command in overview
        assert main([command, "--help"], env=NO_ENV) == 0
        assert "usage:" in capsys.readouterr().out


def test_an_unknown_option_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--no-such-option"], env=NO_ENV) == 2
    assert "--no-such-option" in capsys.readouterr().err


def test_an_unknown_command_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fly"], env=NO_ENV) == 2
    assert "fly" in capsys.readouterr().err


def test_check_config_accepts_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"], env=NO_ENV) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_a_wrong_config_is_one_line_naming_the_key_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "bad.toml").write_text("[trading.stops]\nstop_loss_percent = -3\n")
    assert main(["check-config", "--config", "bad.toml"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "stop_loss_percent" in line and "-3" in line


def test_a_wrong_config_stops_a_paper_session_before_it_starts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "bad.toml").write_text('venue = "kraken"\n')
    assert main(["--config", "bad.toml", "--no-progress"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "venue" in line and "kraken" in line and "binance" in line


def test_a_bad_environment_override_is_refused_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"TRADECORE_TRADING__SIZING__LEVERAGE": "lots"}
    assert main(["--hours", "1", "--no-progress"], env=env) == 2
    assert "trading.sizing.leverage" in one_line_error(capsys.readouterr().err)


def test_live_trading_needs_the_flag_and_the_config_to_agree(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trade", "--live"], env=NO_ENV) == 2
    assert 'mode = "live"' in one_line_error(capsys.readouterr().err)


KEYS = {"TRADECORE_BINANCE_API_KEY": "k", "TRADECORE_BINANCE_API_SECRET": "s"}


@pytest.mark.parametrize("where", ["flag", "config", "environment"])
def test_live_trading_refuses_a_testing_exchange_before_touching_it(
    workdir: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = 'mode = "live"\n' + (f'[testing]\nexchange_url = "{url}"\n' * (where == "config"))
        (workdir / "live.toml").write_text(config)
        argv = ["trade", "--live", "--config", "live.toml"]
        env = dict(KEYS)
        if where == "flag":
            argv += ["--testing-exchange-url", url]
        if where == "environment":
            env["TRADECORE_TESTING__EXCHANGE_URL"] = url
        assert main(argv, env=env) == 2
        line = one_line_error(capsys.readouterr().err)
        assert "testing.exchange_url" in line and "live" in line
        with pytest.raises(BlockingIOError):  # nothing ever connected to the test exchange
            listener.accept()
        if where != "flag":
            assert main(["check-config", "--config", "live.toml"], env=env) == 2
            assert "testing.exchange_url" in one_line_error(capsys.readouterr().err)


def test_trading_without_api_keys_says_which_variables_to_set(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "live.toml").write_text('mode = "live"\nvenue = "bybit"\n')
    assert main(["trade", "--live", "--config", "live.toml"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "TRADECORE_BYBIT_API_KEY" in line and "TRADECORE_BYBIT_API_SECRET" in line
    assert main(["check-config", "--config", "live.toml"], env=NO_ENV) == 2
    assert "TRADECORE_BYBIT_API_KEY" in one_line_error(capsys.readouterr().err)


def test_migrate_on_an_unreachable_database_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `migrate` is a one-shot tool run by hand. The bot itself waits for the database
    # (tests/scenario/test_process_lifecycle.py).
    url = f"postgresql://tradecore@127.0.0.1:{free_port()}/tradecore"
    assert main(["migrate", "--database-url", url], env=NO_ENV) == 2
    assert "cannot open the database" in one_line_error(capsys.readouterr().err)


def test_a_malformed_database_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--database-url", "mysql://x/y"], env=NO_ENV) == 2
    assert "mysql" in one_line_error(capsys.readouterr().err)


def test_migrate_creates_the_schema_once(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{workdir / 'fresh.db'}"
    assert main(["migrate", "--database-url", url], env=NO_ENV) == 0
    assert "0001" in capsys.readouterr().out
    assert main(["migrate", "--database-url", url], env=NO_ENV) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_busy_health_port_does_not_stop_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--hours", "1", "--no-progress", "--health-port", str(port)], env=NO_ENV)
    assert code == 0  # the endpoint is retried in the background; trading goes on
    assert "waves" in capsys.readouterr().out


def test_a_second_instance_on_the_same_sqlite_file_refuses_with_exit_3(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = workdir / "shared.db"
    first = FileInstanceLock(workdir, stem=database.name)  # what the first instance holds
    asyncio.run(first.acquire("binance:default"))
    try:
        code = main(
            ["--hours", "1", "--no-progress", "--database-url", f"sqlite:///{database}"],
            env=NO_ENV,
        )
    finally:
        asyncio.run(first.release())
    assert code == 3
    assert "already running" in one_line_error(capsys.readouterr().err)


def test_a_missing_signals_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--signals", "nowhere.jsonl", "--no-progress"], env=NO_ENV) == 2
    assert "nowhere.jsonl" in one_line_error(capsys.readouterr().err)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_signal_service_url_that_is_not_a_websocket_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "TRADECORE_SIGNALS__URL": "http://signals.example.test",
        "TRADECORE_BINANCE_API_KEY": "k",
        "TRADECORE_BINANCE_API_SECRET": "s",
    }
    assert main(["check-config"], env=env) == 2
    assert "signals.url" in one_line_error(capsys.readouterr().err)
    assert main(["trade"], env=env) == 2
    assert "signals.url" in one_line_error(capsys.readouterr().err)


# Story 10: Binance holds at most 200 open conditional (algo) orders per account; a trailing
# stop moves by create-then-cancel, so each position needs two slots at worst.
TOO_MANY_FOR_BINANCE = 'venue = "binance"\n[trading.sizing]\nmax_open_positions = 101\n'


def test_check_config_refuses_positions_whose_stops_cannot_fit_the_venues_cap(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "many.toml").write_text(TOO_MANY_FOR_BINANCE)
    assert main(["check-config", "--config", "many.toml"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "trading.sizing.max_open_positions = 101" in line
    assert "200" in line and "202" in line  # the cap, and what the worst case needs
    assert "100 or less" in line  # how to fix it


def test_trade_refuses_positions_whose_stops_cannot_fit_the_venues_cap(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "many.toml").write_text(TOO_MANY_FOR_BINANCE)
    env = {"TRADECORE_BINANCE_API_KEY": "k", "TRADECORE_BINANCE_API_SECRET": "s"}
    assert main(["trade", "--config", "many.toml"], env=env) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "trading.sizing.max_open_positions = 101" in line and "100 or less" in line


def test_the_most_positions_that_fit_are_accepted(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "fits.toml").write_text(TOO_MANY_FOR_BINANCE.replace("101", "100"))
    assert main(["check-config", "--config", "fits.toml"], env=NO_ENV) == 0
    # Bybit caps conditional orders per symbol (10) and moves a stop in place: any count fits
    (workdir / "bybit.toml").write_text(
        TOO_MANY_FOR_BINANCE.replace("binance", "bybit").replace("101", "500")
    )
    assert main(["check-config", "--config", "bybit.toml"], env=NO_ENV) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_check_config_refuses_a_demo_config_that_trade_would_refuse(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config answers for the mode the file asks for: demo trades with keys too."""
    (workdir / "demo.toml").write_text('mode = "demo"\nvenue = "binance"\n')
    assert main(["trade", "--config", "demo.toml"], env=NO_ENV) == 2
    trade_line = one_line_error(capsys.readouterr().err)
    assert main(["check-config", "--config", "demo.toml"], env=NO_ENV) == 2
    assert one_line_error(capsys.readouterr().err) == trade_line


def test_more_sample_symbols_than_the_sample_holds_is_refused_not_capped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["paper", "--symbols", "31", "--hours", "1"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "--symbols" in line and "30" in line


def test_a_database_that_journals_another_account_is_refused_in_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{workdir / 'shared.db'}"
    base = ["paper", "--hours", "0.5", "--database-url", url, "--no-progress"]
    assert main([*base, "--venue", "binance"], env=NO_ENV) == 0
    capsys.readouterr()
    assert main([*base, "--venue", "bybit"], env=NO_ENV) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "own database" in line and "binance" in line and "bybit" in line


def test_venue_check_refuses_live_keys_as_trade_does(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["venue-check", "--live"], env=NO_ENV) == 2
    assert 'mode = "live"' in one_line_error(capsys.readouterr().err)
    (workdir / "live.toml").write_text('mode = "live"\n')
    url = "http://127.0.0.1:9"
    argv = ["venue-check", "--live", "--config", "live.toml", "--testing-exchange-url", url]
    assert main(argv, env=KEYS) == 2
    assert "testing.exchange_url" in one_line_error(capsys.readouterr().err)
    assert main(["venue-check"], env=NO_ENV) == 2
    assert "TRADECORE_BINANCE_API_KEY" in one_line_error(capsys.readouterr().err)
