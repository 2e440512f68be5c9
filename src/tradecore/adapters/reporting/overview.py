"""The post-run report of several accounts (`accounts.discover_accounts`): each account's own
report, keyed by its fingerprint, and their totals. Each account is read on a connection of its
own; one that cannot be read is reported as such and the others are not held up.
"""

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from tradecore.adapters.reporting.accounts import Account, Copy, Counted, count_once
from tradecore.adapters.reporting.analysis import pnl
from tradecore.adapters.reporting.report import (
    Report,
    build_report,
    equity_chart,
    report_json,
    report_text,
    table,
)
from tradecore.adapters.reporting.source import open_reader


@attrs.frozen(kw_only=True)
class AccountReport:
    account: Account
    report: Report | None
    error: str | None = None  # why the account's database could not be read


async def build_reports(accounts: Sequence[Account]) -> list[AccountReport]:
    """Each account's report, in the order given."""
    found = []
    for account in accounts:
        try:
            reader = await open_reader(account.url)
            try:
                report = await build_report(reader)
            finally:
                await reader.close()
        except Exception as exc:  # this account's database: say so, report the others
            found.append(AccountReport(account=account, report=None, error=_error(exc)))
            continue
        found.append(AccountReport(account=account, report=report))
    return found


def _error(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def counted_reports(reports: Sequence[AccountReport]) -> Counted:
    """Which account and which positions of each report the totals count (an account found
    in several databases once, each of its positions once: `accounts.count_once`)."""
    return count_once(
        [
            Copy(
                key=r.account.key,
                database=r.account.database,
                fingerprint=r.account.fingerprint,
                journal_at=None if r.report is None else r.report.last_event,
                positions=None if r.report is None else r.report.positions,
            )
            for r in reports
        ]
    )


def reports_total(reports: Sequence[AccountReport]) -> dict[str, Any]:
    """The accounts' summaries added up; coverage weighted by time open, as each report's. An
    account journaled in several databases (a restored backup) is counted once, and each of
    its positions once (`counted_reports`); `warnings` says so."""
    counted = counted_reports(reports)
    read = [(r.account.key, r.report) for r in reports if r.report is not None]
    journals = [report for key, report in read if key in counted.journal]
    kept = {key: [p for p in r.positions if p.id in counted.positions[key]] for key, r in read}
    positions = [p for rows in kept.values() for p in rows]
    coverage = [c for key, r in read for c in r.coverage if c.position_id in counted.positions[key]]
    races = [x for key, r in read for x in r.races if x.position_id in counted.positions[key]]
    open_s = sum(c.open_seconds for c in coverage)
    unprotected_s = sum(c.unprotected_seconds for c in coverage)
    longest = max((c.longest_gap_seconds for c in coverage), default=0.0)
    money = [pnl(rows) for rows in kept.values()]  # by account: ids are unique in one only
    return {
        "accounts": counted.accounts,
        "unreadable": [r.account.key for r in reports if r.report is None],
        "events": sum(r.events for r in journals),
        "positions": len(positions),
        "held_on_venue": len(coverage),
        "still_open": sum(1 for c in coverage if c.still_open),
        "open_seconds": round(open_s, 3),
        "unprotected_seconds": round(unprotected_s, 3),
        "stop_coverage_pct": 100.0 if open_s <= 0 else round(100 * (1 - unprotected_s / open_s), 3),
        "longest_gap_seconds": round(longest, 3),
        "races": len(races),
        "pnl_total": format(sum((m.total for m in money), Decimal(0)), "f"),
        "wins": sum(m.wins for m in money),
        "losses": sum(m.losses for m in money),
        "errors": sum(sum(r.errors.get("ERROR", {}).values()) for r in journals),
        "critical": sum(sum(r.errors.get("CRITICAL", {}).values()) for r in journals),
        "warnings": list(counted.warnings),
    }


def reports_json(reports: Sequence[AccountReport]) -> dict[str, Any]:
    """`{"accounts": {fingerprint: {"database", ...the report}}, "total": {...}}`."""
    accounts: dict[str, Any] = {}
    for r in reports:
        body = report_json(r.report) if r.report is not None else {"error": r.error}
        accounts[r.account.key] = {"database": r.account.database, **body}
    return {"accounts": accounts, "total": reports_total(reports)}


def reports_text(reports: Sequence[AccountReport]) -> str:
    parts = []
    for r in reports:
        parts.append(f"=== account {r.account.key} (database {r.account.database}) ===\n")
        if r.report is None:
            parts.append(f"cannot be read: {r.error}\n")
        else:
            parts.append(report_text(r.report))
        parts.append("\n")
    parts.append(total_text(reports))
    return "".join(parts)


def total_text(reports: Sequence[AccountReport]) -> str:
    total = reports_total(reports)
    rows: list[Sequence[object]] = [
        (
            r.account.key,
            r.account.database,
            len(r.report.positions),
            sum(1 for c in r.report.coverage if c.still_open),
            round(r.report.unprotected_seconds, 3),
            r.report.coverage_pct,
            format(r.report.pnl.total, "f"),
        )
        if r.report is not None
        else (r.account.key, r.account.database, "unreadable", "", "", "", "")
        for r in reports
    ]
    rows.append(
        (
            "TOTAL",
            f"{total['accounts']} accounts",
            total["positions"],
            total["still_open"],
            total["unprotected_seconds"],
            total["stop_coverage_pct"],
            total["pnl_total"],
        )
    )
    headers = ["account", "database", "positions", "still open", "unprotected s"]
    headers += ["coverage %", "pnl"]
    warnings = [f"warning: {w}" for w in total["warnings"]]
    return "\n".join(["TOTAL OVER ACCOUNTS", *table(headers, rows), *warnings]) + "\n"


def account_charts(reports: Sequence[AccountReport], directory: Path) -> list[Path]:
    """One equity chart per account read: `equity-<fingerprint>.png`."""
    return [
        equity_chart(r.report.pnl, directory / f"equity-{safe_name(r.account.key)}.png")
        for r in reports
        if r.report is not None
    ]


def safe_name(name: str) -> str:
    """`name` as a file name: anything but letters, digits, '-' and '_' becomes '_'."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
