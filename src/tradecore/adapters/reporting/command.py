"""The `report` command's answer, printed: one database's report (or one position's story), or
every account's of a server with their totals (`python -m runner report`; the figures are
computed in `reporting.report` and `reporting.overview`). 0 printed, 2 bad usage or a database
that cannot be opened, 1 a failure while reading.
"""

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TextIO

from tradecore.adapters.reporting.accounts import Account
from tradecore.adapters.reporting.overview import (
    account_charts,
    build_reports,
    reports_json,
    reports_text,
    safe_name,
)
from tradecore.adapters.reporting.report import (
    build_report,
    equity_chart,
    position_chart,
    position_story,
    report_json,
    report_text,
    story_json,
    story_text,
)
from tradecore.adapters.reporting.source import Reader, open_reader

FORMATS = ("text", "json")


async def run_report(
    database_url: str,
    *,
    fmt: str = "text",
    position_id: str | None = None,
    chart_dir: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the report (or one position's story); 0 ok, 2 bad usage or an unreachable
    database, 1 a failure while reading."""
    out = out or sys.stdout
    charts = _charts(fmt, chart_dir)
    if charts is False:
        return 2
    try:
        reader = await open_reader(database_url)
    except Exception as exc:  # one line, no traceback: the URL or the server is wrong
        print(
            f"report: cannot open the database: {type(exc).__name__}: {exc} "
            "(check the URL and that the server is running)",
            file=sys.stderr,
        )
        return 2  # a wrong URL or a server that is down: the operator's to fix
    try:
        if position_id is not None:
            return await _story(reader, position_id, fmt, charts, out)
        report = await build_report(reader)
    except Exception as exc:  # the database went away mid-read
        print(f"report: reading the database failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        await reader.close()
    if charts is not None:
        equity_chart(report.pnl, charts / "equity.png")
    if fmt == "json":
        out.write(json.dumps(report_json(report), indent=2) + "\n")
    else:
        out.write(report_text(report))
    return 0


async def _story(
    reader: Reader, position_id: str, fmt: str, charts: Path | None, out: TextIO
) -> int:
    story = await position_story(reader, position_id)
    if story.position is None and not story.events:
        print(f"report: no position or events with id {position_id!r}", file=sys.stderr)
        return 2
    if charts is not None:
        position_chart(story, charts / f"position-{safe_name(position_id)}.png")
    if fmt == "json":
        out.write(json.dumps(story_json(story), indent=2) + "\n")
    else:
        out.write(story_text(story))
    return 0


async def run_report_accounts(
    accounts: Sequence[Account],
    *,
    fmt: str = "text",
    chart_dir: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Each account's report and their totals, keyed by account fingerprint; 0 ok, 2 bad
    usage, 1 when an account's database could not be read (the others are printed)."""
    out = out or sys.stdout
    charts = _charts(fmt, chart_dir)
    if charts is False:
        return 2
    reports = await build_reports(accounts)
    if charts is not None:
        account_charts(reports, charts)
    if fmt == "json":
        out.write(json.dumps(reports_json(reports), indent=2) + "\n")
    else:
        out.write(reports_text(reports))
    for unread in (r for r in reports if r.report is None):
        print(f"report: account {unread.account.key}: {unread.error}", file=sys.stderr)
    return 1 if any(r.report is None for r in reports) else 0


def _charts(fmt: str, chart_dir: str | None) -> Path | Literal[False] | None:
    """The chart directory (None: no charts); False, said on stderr, when the usage is bad."""
    if fmt not in FORMATS:
        print(f"report: --format must be one of {', '.join(FORMATS)}, not {fmt!r}", file=sys.stderr)
        return False
    charts = Path(chart_dir) if chart_dir is not None else None
    if charts is not None and not charts.is_dir():
        print(f"report: chart directory {chart_dir!r} does not exist", file=sys.stderr)
        return False
    return charts
