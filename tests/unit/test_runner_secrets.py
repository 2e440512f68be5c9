"""Secrets set in the environment never appear in logs, events, health, metrics or reports."""

import json
import logging
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from loguru import logger

from runner.__main__ import main
from tradecore.testing import FakeVenue
from tradecore.wiring.config import (
    HealthSettings,
    LogFormat,
    LoggingSettings,
    load_config,
    read_secrets,
)
from tradecore.wiring.container import Container
from tradecore.wiring.lifecycle import resolve, shutdown
from tradecore.wiring.logs import REDACTED, configure_logging

SECRETS = {
    "TRADECORE_BINANCE_API_KEY": "bnKEY0123456789abcdef",
    "TRADECORE_BINANCE_API_SECRET": "bnSECRET9876543210fedcba",
    "TRADECORE_BYBIT_API_KEY": "byKEYqwertyuiop",
    "TRADECORE_BYBIT_API_SECRET": "bySECRETasdfghjkl",
    "TRADECORE_SIGNALS_TOKEN": "sigTOKENzxcvbnm123",
    "TRADECORE_TELEGRAM_TOKEN": "123456:tgTOKENpoiuytrewq",
    "TRADECORE_WEBHOOK_URL": "https://hooks.example.test/T000/hookSECRETmnbvcxz",
    "TRADECORE_DASHBOARD_TOKEN": "dashTOKENlkjhgfdsa0987",
}


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], force=True)


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def test_a_secret_written_to_the_log_comes_out_redacted(workdir: Path) -> None:
    log = workdir / "out.log"
    for style in (LogFormat.TEXT, LogFormat.JSON):
        configure_logging(
            LoggingSettings(file=str(log), format=style),
            read_secrets(SECRETS).values(),
            stderr=open(workdir / "stderr.txt", "a"),  # noqa: SIM115 (loguru owns it)
        )
        logger.info("connecting with key {}", SECRETS["TRADECORE_BINANCE_API_KEY"])
        logger.bind(token=SECRETS["TRADECORE_TELEGRAM_TOKEN"]).warning("telegram down")
        logging.getLogger("httpx").warning("POST %s", SECRETS["TRADECORE_WEBHOOK_URL"])
        logger.remove()
    written = log.read_text() + (workdir / "stderr.txt").read_text()
    assert leaks(written) == []
    assert written.count(REDACTED) >= 6


def test_a_paper_session_with_keys_in_the_environment_leaks_them_nowhere(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**SECRETS, "TRADECORE_LOGGING__LEVEL": "DEBUG"}
    assert main(["--hours", "1", "--symbols", "8", "--json"], env=env) == 0
    outputs = capsys.readouterr()
    summary = json.loads(outputs.out)
    url = summary["database"]
    for command in (["report"], ["report", "--format", "json"]):
        assert main([*command, "--database-url", url], env=env) == 0
    assert main(["monitor", "--database-url", url, "--iterations", "1"], env=env) == 0
    reports = capsys.readouterr()
    logs = "".join(p.read_text() for p in (workdir / "var" / "log").glob("*"))
    assert logs  # the session did log
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        database = "\n".join(db.iterdump())  # every table, every row: events, alerts, …
    assert "bot_started" in database
    for where, text in {
        "stdout": outputs.out,
        "stderr": outputs.err,
        "log files": logs,
        "database": database,
        "reports": reports.out + reports.err,
    }.items():
        assert leaks(text) == [], where


async def test_health_and_metrics_never_show_a_secret(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = load_config(None, {"TRADECORE_ALERTS__TELEGRAM_CHAT_ID": "42"})
    venue = FakeVenue.bybit()
    container = Container()
    container.config.override(config)
    container.secrets.override(read_secrets(SECRETS))
    container.clock.override(venue.clock)
    container.paper_exchange.override(venue.exchange)
    container.database_url.override(f"sqlite:///{tmp_path / 'h.db'}")
    container.spool_path.override(str(tmp_path / "h.spool"))
    container.health_port.override(port)
    assert config.health == HealthSettings()
    kernel = await resolve(container.kernel())
    await resolve(container.health_server())
    await kernel.start(loops=False)
    try:
        async with aiohttp.ClientSession() as client:
            bodies = []
            for path in ("/health", "/metrics"):
                async with client.get(f"http://127.0.0.1:{port}{path}") as answer:
                    bodies.append(await answer.text())
    finally:
        await kernel.stop()
        await shutdown(container)
    assert "tradecore_up" in bodies[1] and '"running": true' in bodies[0]
    assert leaks("".join(bodies)) == []


def test_a_registered_venues_keys_are_read_where_the_refusal_says_to_set_them() -> None:
    # docs/extending.md adds a venue with Venue.register; trading on it live needs its keys.
    # The refusal names TRADECORE_<VENUE>_API_KEY / _API_SECRET: set there, they must be read
    # (not refused as "tradecore reads no secret by that name") and redacted like the others.
    from tradecore.domain.model import Venue
    from tradecore.wiring.config import Config, Mode, load_config, missing_keys, read_secrets

    acme = Venue.register("acme-x")
    told = missing_keys(Config(mode=Mode.LIVE, venue=acme))
    assert "TRADECORE_ACME_X_API_KEY" in told and "TRADECORE_ACME_X_API_SECRET" in told
    env = {"TRADECORE_ACME_X_API_KEY": "acme-key", "TRADECORE_ACME_X_API_SECRET": "acme-secret"}
    load_config(None, env=env)  # not refused
    secrets = read_secrets(env)
    assert secrets.keys_for(acme) == ("acme-key", "acme-secret")
    assert {"acme-key", "acme-secret"} <= set(secrets.values())
    assert "acme-key" not in repr(secrets)
    assert secrets.keys_for(Venue.BINANCE) == (None, None)
