"""Many accounts on one PostgreSQL server, one database each (docs/operations.md, "Many
accounts"): `monitor`, `report` and `dashboard` show every account of the server, keyed by its
fingerprint, with their totals, or the one `--account` names; a database that journals no
account is not shown, one that cannot be read is skipped saying why, and a password never
appears in what they print.

The server is this module's own throwaway one (never 127.0.0.1:5432): the session's server
holds other tests' databases, whose accounts would be listed too.
"""

import asyncio
import contextlib
import html
import io
import json
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import attrs
import pytest

from runner.__main__ import main
from runner.dashboard import run_dashboard_accounts
from runner.monitor import run_monitor_accounts
from runner.report import run_report_accounts
from tradecore.adapters.clock import VirtualClock
from tradecore.adapters.dashboard import account_feeds, accounts_overview
from tradecore.adapters.dashboard.web import _list_html
from tradecore.adapters.database import connect_store, open_journal
from tradecore.adapters.reporting.accounts import (
    Account,
    _keyed,
    database_url,
    discover_accounts,
)
from tradecore.adapters.reporting.overview import (
    build_reports,
    reports_json,
    reports_text,
    reports_total,
)
from tradecore.domain.aged import AgedParams
from tradecore.domain.events import Event, EventType
from tradecore.domain.model import Side, Venue
from tradecore.domain.positions import Position, PositionState
from tradecore.testing.pgserver import PostgresServer, PostgresUnavailable

pytestmark = pytest.mark.postgres

MAIN = "binance:live:aaaa1111aaaa1111"
HEDGE = "bybit:live:bbbb2222bbbb2222"
PASSWORD = "hunter2-not-shown"
NOW = datetime.now(UTC).replace(microsecond=0)
TOKEN = "accounts-dashboard-token"


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def position(pid: str, venue: Venue, state: PositionState, **fields: Any) -> Position:
    return Position(
        id=pid,
        venue=venue,
        symbol=fields.pop("symbol", "BTCUSDT"),
        side=Side.LONG,
        state=state,
        requested_quantity=Decimal(1),
        quantity=Decimal(1),
        created_at=ago(3600),
        opened_at=ago(3600),
        entry_price=Decimal(100),
        **fields,
    )


async def journal_account(url: str, account: str, positions: list[Position], spool: Path) -> None:
    """What a bot on `account` leaves in its database: the binding of the lock, positions and
    their events, written through the library's own store and journal."""
    database = await connect_store(url)
    try:
        lock = database.instance_lock()
        await lock.acquire(account)
        for p in positions:
            await database.store.positions.add(p)
        journal = open_journal(database, str(spool))
        journal.start()
        for p in positions:
            journal.emit(Event(id=uuid.uuid4(), type=EventType.ENTRY_ORDER_FILLED,
                               created_at=ago(3600), position_id=p.id))  # fmt: skip
        await journal.close()
        await lock.release()
    finally:
        await database.close()


class Server:
    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg
        self.url = pg.url("postgres").replace("postgres@", f"postgres:{PASSWORD}@", 1)
        self.main_db = pg.create_database("tradecore_main").rsplit("/", 1)[1]
        self.hedge_db = pg.create_database("tradecore_hedge").rsplit("/", 1)[1]
        self.empty_db = pg.create_database("not_tradecore").rsplit("/", 1)[1]

    def db(self, name: str) -> str:
        return database_url(self.url, name)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own with two accounts' databases and one that is no
    account's (trust authentication: the password in the URL is only there to be hidden)."""
    try:
        pg = PostgresServer.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no throwaway PostgreSQL server: {exc} (CI=true)", pytrace=False)
        pytest.skip(f"no throwaway PostgreSQL server could be started: {exc}")
    try:
        s = Server(pg)
        main_positions = [
            position("A-open", Venue.BINANCE, PositionState.ACTIVE, stop_price=Decimal(95),
                     stop_order_id="sa"),
            position("A-done", Venue.BINANCE, PositionState.CLOSED, symbol="ETHUSDT",
                     closed_at=ago(600), exit_price=Decimal("112.5"),
                     realized_pnl=Decimal("12.5")),
        ]  # fmt: skip
        hedge_positions = [
            position("B-bare", Venue.BYBIT, PositionState.ACTIVE, symbol="SOLUSDT"),
            position("B-done", Venue.BYBIT, PositionState.CLOSED, symbol="XRPUSDT",
                     closed_at=ago(300), exit_price=Decimal("97.75"),
                     realized_pnl=Decimal("-2.25")),
        ]  # fmt: skip
        spools = tmp_path_factory.mktemp("spools")
        asyncio.run(journal_account(s.db(s.main_db), MAIN, main_positions, spools / "a"))
        asyncio.run(journal_account(s.db(s.hedge_db), HEDGE, hedge_positions, spools / "b"))
        yield s
    finally:
        pg.close()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv, env={})
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


async def test_discovery_lists_each_database_that_journals_an_account(server: Server) -> None:
    found = await discover_accounts(server.url)

    assert {(a.fingerprint, a.database) for a in found.accounts} == {
        (MAIN, server.main_db),
        (HEDGE, server.hedge_db),
    }
    assert all(a.key == a.fingerprint for a in found.accounts)
    assert all(PASSWORD not in a.shown_url + repr(a) for a in found.accounts)
    assert PASSWORD not in found.server
    skipped = {s.database: s for s in found.skipped}
    assert skipped[server.empty_db].reason == "no tradecore_account table"
    assert not skipped[server.empty_db].unreadable


async def as_superuser(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def test_a_database_the_user_may_not_read_is_skipped_saying_why(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user who may read the main account's database, may not read the hedge account's
    table and may not connect to a third database at all."""
    locked = server.pg.create_database("tradecore_locked").rsplit("/", 1)[1]
    third = journal_account(server.db(locked), "binance:live:cccc3333", [], tmp_path / "s")
    asyncio.run(third)
    server.pg.psql(f'REVOKE CONNECT ON DATABASE "{locked}" FROM PUBLIC')
    server.pg.psql("CREATE ROLE watcher LOGIN")
    main_db = server.db(server.main_db)
    asyncio.run(as_superuser(main_db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO watcher"))
    as_watcher = server.url.replace(f"postgres:{PASSWORD}@", "watcher@", 1)
    try:
        found = asyncio.run(discover_accounts(as_watcher))
        code, out, err = run(["report", "--server-url", as_watcher, "--format", "json"], capsys)
    finally:
        server.pg.psql(f'DROP DATABASE "{locked}"')
        asyncio.run(as_superuser(main_db, "DROP OWNED BY watcher"))
        server.pg.psql("DROP ROLE watcher")

    assert [a.fingerprint for a in found.accounts] == [MAIN]
    reasons = {s.database: s.reason for s in found.unreadable}
    assert "permission denied for database" in reasons[locked]
    assert "permission denied for table tradecore_account" in reasons[server.hedge_db]
    assert code == 0 and list(json.loads(out)["accounts"]) == [MAIN]
    assert f"report: skipped database {server.hedge_db}: InsufficientPrivilegeError" in err
    assert f"report: skipped database {locked}: " in err
    assert server.empty_db not in err  # no account's journal: not shown, not a problem


def test_monitor_shows_a_table_per_account_and_their_total(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "monitor.jsonl"
    argv = ["monitor", "--server-url", server.url, "--all-accounts", "--iterations", "1"]
    code, out, _ = run([*argv, "--jsonl", str(jsonl)], capsys)

    assert code == 0
    [line] = [json.loads(text) for text in jsonl.read_text().splitlines()]
    main_, hedge = line["accounts"][MAIN], line["accounts"][HEDGE]
    assert (main_["database"], main_["positions"], main_["unprotected"], main_["pnl"]) == (
        server.main_db, 1, 0, "12.5"
    )  # fmt: skip
    assert (hedge["database"], hedge["unprotected_ids"], hedge["pnl"]) == (
        server.hedge_db, ["B-bare"], "-2.25"
    )  # fmt: skip
    assert {k: line["total"][k] for k in ("accounts", "positions", "unprotected", "pnl")} == {
        "accounts": 2, "positions": 2, "unprotected": 1, "pnl": "10.25"
    }  # fmt: skip
    assert f"## account {MAIN} (database {server.main_db})" in out
    assert f"## account {HEDGE} (database {server.hedge_db})" in out
    total_row = next(row for row in out.splitlines() if row.startswith("TOTAL"))
    assert total_row.split()[1:5] == ["2", "2", "1", "10.25"]
    final = json.loads(out[out.index('{\n  "final_report"') :])["final_report"]
    assert set(final["accounts"]) == {MAIN, HEDGE} and final["total"]["pnl"] == "10.25"


def test_monitor_with_account_watches_that_account_only(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonl = tmp_path / "one.jsonl"
    argv = ["monitor", "--server-url", server.url, "--account", HEDGE, "--iterations", "1"]
    code, out, _ = run([*argv, "--jsonl", str(jsonl)], capsys)

    assert code == 0
    [line] = [json.loads(text) for text in jsonl.read_text().splitlines()]
    assert list(line["accounts"]) == [HEDGE]
    assert line["total"]["pnl"] == "-2.25" and MAIN not in out


def test_report_json_is_keyed_by_account_with_totals(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["report", "--server-url", server.url, "--format", "json"], capsys)

    assert code == 0
    report = json.loads(out)
    assert set(report["accounts"]) == {MAIN, HEDGE}
    main_, hedge = report["accounts"][MAIN], report["accounts"][HEDGE]
    assert main_["database"] == server.main_db and main_["pnl"]["total"] == "12.5"
    assert list(main_["pnl"]["by_position"]) == ["A-done"]
    assert hedge["pnl"]["by_position"] == {"B-done": "-2.25"}
    total = report["total"]
    assert (total["accounts"], total["positions"], total["still_open"]) == (2, 4, 2)
    assert (total["pnl_total"], total["wins"], total["losses"]) == ("10.25", 1, 1)


def test_report_text_has_each_account_then_the_total(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["report", "--server-url", server.url, "--all-accounts"], capsys)

    assert code == 0
    assert f"=== account {MAIN} (database {server.main_db}) ===" in out
    assert f"=== account {HEDGE} (database {server.hedge_db}) ===" in out
    total_row = next(row for row in out.splitlines() if row.startswith("TOTAL  "))
    assert total_row.split()[-1] == "10.25"


def test_report_with_account_reports_that_account_and_its_position(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--server-url", server.url, "--account", MAIN, "--format", "json"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert list(json.loads(out)["accounts"]) == [MAIN]

    code, out, _ = run([*argv, "--position", "A-done"], capsys)
    assert code == 0
    assert json.loads(out)["position"]["realized_pnl"] == "12.5"


async def test_an_account_whose_database_is_gone_is_critical_and_the_others_are_shown(
    server: Server, tmp_path: Path
) -> None:
    found = await discover_accounts(server.url)
    gone = Account(fingerprint="binance:live:gone", database="dropped", url=server.db("dropped"))
    accounts = [*found.accounts, attrs.evolve(gone, key=gone.fingerprint)]
    out, jsonl = io.StringIO(), tmp_path / "m.jsonl"
    code = await run_monitor_accounts(accounts, iterations=1, jsonl_path=str(jsonl), out=out)

    assert code == 0
    [line] = [json.loads(text) for text in jsonl.read_text().splitlines()]
    assert [a["code"] for a in line["accounts"]["binance:live:gone"]["anomalies"]] == [
        "database_unreachable"
    ]
    assert line["accounts"][MAIN]["pnl"] == "12.5"
    assert line["total"]["pnl"] == "10.25"
    assert line["total"]["pnl_unknown_accounts"] == ["binance:live:gone"]
    assert line["total"]["worst"] == "CRITICAL"

    report_out = io.StringIO()
    assert await run_report_accounts(accounts, fmt="json", out=report_out) == 1
    report = json.loads(report_out.getvalue())
    assert "does not exist" in report["accounts"]["binance:live:gone"]["error"]
    assert report["total"]["pnl_total"] == "10.25"
    assert report["total"]["unreadable"] == ["binance:live:gone"]


def test_a_wrong_fingerprint_exits_2_naming_the_accounts_found(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("monitor", "report", "dashboard"):
        argv = [command, "--server-url", server.url, "--account", "binance:live:nope"]
        code, _, err = run(argv, capsys)

        assert code == 2
        assert "no account 'binance:live:nope'" in err
        assert MAIN in err and HEDGE in err


def test_all_accounts_needs_a_postgresql_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    code, _, err = run(["report", "--database-url", url, "--all-accounts"], capsys)

    assert code == 2 and "not a PostgreSQL server" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def dashboard(server: Server, token: str | None = None) -> Any:
    found = await discover_accounts(server.url)
    accounts: list[Account] = list(found.accounts)
    port, stop = free_port(), asyncio.Event()
    serving = asyncio.create_task(
        run_dashboard_accounts(
            accounts, host="127.0.0.1", port=port, token=token, aged=AgedParams(), stop=stop
        )
    )
    try:
        for _ in range(200):  # until it listens
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as client:
                    await client.get(f"http://127.0.0.1:{port}/")
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        assert await asyncio.wait_for(serving, 10) == 0


async def test_the_dashboard_lists_every_account_and_links_its_page(server: Server) -> None:
    async with dashboard(server) as base, aiohttp.ClientSession() as client:
        async with client.get(f"{base}/dashboard/accounts.json") as answer:
            overview = await answer.json()
        async with client.get(f"{base}/dashboard") as answer:
            page = await answer.text()
        link = f"dashboard/accounts/{quote(HEDGE, safe='')}/dashboard"
        async with client.get(f"{base}/{link}/view.json") as answer:
            hedge_view = await answer.json()
        async with client.get(f"{base}/{link}") as answer:
            hedge_page = (answer.status, await answer.text())
        async with client.get(f"{base}/dashboard/accounts/nobody/dashboard") as answer:
            unknown = (answer.status, await answer.text())

    assert overview["accounts"][MAIN]["open_positions"] == 1
    assert overview["accounts"][HEDGE]["unprotected"] == 1
    assert overview["accounts"][HEDGE]["database"] == server.hedge_db
    total = overview["total"]
    assert (total["accounts"], total["open_positions"], total["unprotected"]) == (2, 2, 1)
    assert total["pnl_realized"] == "10.25"
    assert f'href="{link}"' in page and MAIN in page and "10.25" in page
    assert PASSWORD not in page + json.dumps(overview)
    assert hedge_view["account"] == HEDGE
    assert [p["symbol"] for p in hedge_view["positions"]] == ["SOLUSDT"]
    assert hedge_page[0] == 200 and "dashboard/stream" in hedge_page[1]
    assert unknown[0] == 404 and MAIN in unknown[1]


async def test_with_a_token_the_account_list_and_pages_ask_for_it(server: Server) -> None:
    link = f"/dashboard/accounts/{quote(MAIN, safe='')}/dashboard"
    async with dashboard(server, token=TOKEN) as base:
        async with aiohttp.ClientSession() as client:
            for path in ("/dashboard", "/dashboard/accounts.json", link, f"{link}/view.json"):
                async with client.get(base + path) as answer:
                    assert answer.status == 401, path
        jar = aiohttp.CookieJar(unsafe=True)  # keeps the cookie of an address like 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            async with client.get(f"{base}/dashboard?token={TOKEN}") as answer:
                assert answer.status == 200 and str(answer.url) == f"{base}/dashboard"
            async with client.get(f"{base}{link}/view.json") as answer:  # the cookie does
                assert answer.status == 200
                assert (await answer.json())["account"] == MAIN


async def restored_copy(tmp_path: Path, positions: list[Position]) -> tuple[str, str]:
    """An account's database (SQLite: a file) and a byte copy of it, as a backup restored
    next to it would be: the URLs of the live one and of the copy."""
    live = f"sqlite:///{tmp_path / 'live.db'}"
    await journal_account(live, MAIN, positions, tmp_path / "spool")
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "live.db").read_bytes())
    return live, f"sqlite:///{copy}"


def copies(live: str, copy: str) -> tuple[Account, ...]:
    """Both databases of the account as discovery lists them: the copy first, so that the
    order they are found in decides nothing."""
    found = [
        Account(fingerprint=MAIN, database="tradecore_main_restored", url=copy),
        Account(fingerprint=MAIN, database="tradecore_main", url=live),
    ]
    return _keyed(found)


SAME_ACCOUNT = "same account fingerprint in two databases: totals count it once"


async def test_a_restored_copy_of_an_accounts_database_is_not_counted_twice_in_the_totals(
    tmp_path: Path,
) -> None:
    # A backup restored next to the live database (docs: keyed fingerprint@database so that
    # neither hides the other): the totals still speak of one account, and its PnL once.
    done = position("A-done", Venue.BINANCE, PositionState.CLOSED, closed_at=ago(600),
                    exit_price=Decimal("112.5"), realized_pnl=Decimal("12.5"))  # fmt: skip
    live, copy = await restored_copy(tmp_path, [done])
    shown = copies(live, copy)
    assert len({a.key for a in shown}) == 2  # both shown, neither hidden

    reports = await build_reports(shown)
    total = reports_total(reports)
    assert (total["accounts"], total["pnl_total"], total["positions"]) == (1, "12.5", 1)
    assert len(reports_json(reports)["accounts"]) == 2
    [warning] = total["warnings"]
    assert SAME_ACCOUNT in warning
    assert f"({MAIN}: tradecore_main_restored, tradecore_main)" in warning  # both named
    assert f"warning: {warning}" in reports_text(reports)


async def test_where_the_copies_disagree_the_totals_take_the_later_update_and_say_so(
    tmp_path: Path,
) -> None:
    """The backup was taken while A-run was open; the live database closed it since (+5).
    Every surface (report, monitor, dashboard list) counts A-run once, as closed, and warns
    naming both databases."""
    done = position("A-done", Venue.BINANCE, PositionState.CLOSED, closed_at=ago(600),
                    exit_price=Decimal("112.5"), realized_pnl=Decimal("12.5"))  # fmt: skip
    running = position("A-run", Venue.BINANCE, PositionState.ACTIVE, stop_price=Decimal(95),
                       stop_order_id="sr")  # fmt: skip
    live, copy = await restored_copy(tmp_path, [done, running])
    later = await connect_store(live, clock=VirtualClock(NOW + timedelta(hours=1)))
    try:
        closed = attrs.evolve(running, state=PositionState.CLOSED, closed_at=ago(60),
                              exit_price=Decimal(105), realized_pnl=Decimal(5),
                              version=running.version + 1)  # fmt: skip
        await later.store.positions.save(closed)
    finally:
        await later.close()
    shown = copies(live, copy)

    reports = await build_reports(shown)
    total = reports_total(reports)
    assert (total["accounts"], total["positions"], total["still_open"]) == (1, 2, 0)
    assert (total["pnl_total"], total["wins"]) == ("17.5", 2)
    [warning] = total["warnings"]
    assert f"{SAME_ACCOUNT} ({MAIN}: tradecore_main_restored, tradecore_main)" in warning
    assert "differ on A-run from tradecore_main," in warning and "A-done" not in warning
    # each database still shows what it holds
    by_key = {r.account.database: r.report for r in reports}
    assert by_key["tradecore_main_restored"].pnl.total == Decimal("12.5")
    assert by_key["tradecore_main"].pnl.total == Decimal("17.5")

    out, jsonl = io.StringIO(), tmp_path / "m.jsonl"
    watched = run_monitor_accounts(list(shown), iterations=1, jsonl_path=str(jsonl), out=out)
    assert await watched == 0
    [line] = [json.loads(text) for text in jsonl.read_text().splitlines()]
    assert [a["positions"] for a in line["accounts"].values()] == [1, 0]  # the copy: A-run open
    monitored = line["total"]
    assert (monitored["accounts"], monitored["positions"], monitored["pnl"]) == (1, 0, "17.5")
    assert monitored["warnings"] == [warning]
    assert f"warning: {warning}" in out.getvalue()

    feeds = account_feeds(shown, now=lambda: NOW)
    try:
        overview = await accounts_overview(feeds)
    finally:
        for _, feed in feeds.values():
            await feed.stop()
    listed = overview["total"]
    assert (listed["accounts"], listed["open_positions"], listed["pnl_realized"]) == (1, 0, "17.5")
    assert listed["warnings"] == [warning]
    assert [a["open_positions"] for a in overview["accounts"].values()] == [1, 0]
    assert f"warning: {html.escape(warning)}" in _list_html(overview)
