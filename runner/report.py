"""`python -m runner report`: the post-run report from the database (wiring and printing only;
the figures are computed in `tradecore.adapters.reporting.report`)."""

import json
import sys
from pathlib import Path
from typing import TextIO

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
    out: TextIO = sys.stdout,
) -> int:
    """Print the report (or one position's story); 0 ok, 2 bad usage or an unreachable
    database, 1 a failure while reading."""
    if fmt not in FORMATS:
        print(f"report: --format must be one of {', '.join(FORMATS)}, not {fmt!r}", file=sys.stderr)
        return 2
    charts = Path(chart_dir) if chart_dir is not None else None
    if charts is not None and not charts.is_dir():
        print(f"report: chart directory {chart_dir!r} does not exist", file=sys.stderr)
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
        position_chart(story, charts / f"position-{_safe(position_id)}.png")
    if fmt == "json":
        out.write(json.dumps(story_json(story), indent=2) + "\n")
    else:
        out.write(story_text(story))
    return 0


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
