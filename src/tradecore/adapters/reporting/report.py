"""The post-run report: what happened, from the database alone (events, positions, operations).

`build_report(reader)` gathers it, `report_json`/`report_text` render it, `position_story`
tells one position's life from its events, and `equity_chart`/`position_chart` draw PNGs;
`closed_pnl(url)` is each closed position's realized PnL (the operator's `/pnl`).
Money stays Decimal and is written as its exact string in JSON.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from tradecore.adapters.reporting.analysis import (
    Coverage,
    Percentiles,
    Pnl,
    Race,
    TrailingStats,
    by_subject,
    coverage_of,
    errors_by_type,
    latency_samples,
    percentiles,
    pnl,
    pnl_of,
    trailing_stats,
)
from tradecore.adapters.reporting.source import EventRow, PositionRow, Reader, open_reader


@attrs.frozen(kw_only=True)
class Report:
    first_event: datetime | None
    last_event: datetime | None
    events: int
    positions: tuple[PositionRow, ...]
    coverage: tuple[Coverage, ...]
    races: tuple[Race, ...]
    latency: Mapping[str, Percentiles]
    trailing: TrailingStats
    pnl: Pnl
    errors: Mapping[str, Mapping[str, int]]

    @property
    def open_seconds(self) -> float:
        return sum(c.open_seconds for c in self.coverage)

    @property
    def unprotected_seconds(self) -> float:
        return sum(c.unprotected_seconds for c in self.coverage)

    @property
    def coverage_pct(self) -> float:
        """Time-weighted stop coverage over every position, in percent."""
        if self.open_seconds <= 0:
            return 100.0
        return round(100 * (1 - self.unprotected_seconds / self.open_seconds), 3)


async def build_report(reader: Reader, *, now: datetime | None = None) -> Report:
    """Everything the report says. Positions still open are measured up to `now` (by default
    the last event in the database, so a finished run reads the same whenever it is asked)."""
    events = await reader.events()
    positions = await reader.positions()
    operations = await reader.operations()
    last = events[-1].created_at if events else None
    until = now or last or max((p.created_at for p in positions), default=None)
    grouped = by_subject(events)
    known = {p.id for p in positions}
    coverages: list[Coverage] = []
    races: list[Race] = []
    for position in positions:
        if until is None:
            break
        found, raced = coverage_of(position, grouped.get(position.id, []), now=until)
        if found is not None:
            coverages.append(found)
        races += raced
    latency = {
        name: value
        for name, samples in sorted(latency_samples(grouped, operations).items())
        if (value := percentiles(samples)) is not None
    }
    return Report(
        first_event=events[0].created_at if events else None,
        last_event=last,
        events=len(events),
        positions=tuple(positions),
        coverage=tuple(coverages),
        races=tuple(races),
        latency=latency,
        trailing=trailing_stats({k: v for k, v in grouped.items() if k in known}),
        pnl=pnl(positions),
        errors=errors_by_type(events),
    )


async def closed_pnl(url: str) -> list[tuple[datetime, Decimal | None]]:
    """Each closed position's close time and realized PnL (None: not known yet), read on a
    connection of its own that is closed again at once."""
    reader = await open_reader(url)
    try:
        positions = await reader.positions()
    finally:
        await reader.close()
    found: list[tuple[datetime, Decimal | None]] = []
    for p in positions:
        value = pnl_of(p)
        # as the report counts them (`analysis.pnl`): a rollback that filled nothing is none
        held = p.state == "closed" and p.quantity > 0
        if p.closed_at is not None and (value is not None or held):
            found.append((p.closed_at, value))
    return found


# -- JSON ----------------------------------------------------------------------------------


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _money(value: Decimal) -> str:
    return format(value, "f")


def _coverage_json(c: Coverage) -> dict[str, Any]:
    return {
        "position_id": c.position_id,
        "exchange": c.exchange,
        "symbol": c.symbol,
        "filled_at": _t(c.filled_at),
        "ended_at": _t(c.ended_at),
        "still_open": c.still_open,
        "open_seconds": round(c.open_seconds, 3),
        "unprotected_seconds": round(c.unprotected_seconds, 3),
        "coverage_pct": round(100 * c.coverage, 3),
        "first_stop_seconds": None
        if c.first_stop_seconds is None
        else round(c.first_stop_seconds, 3),
        "longest_gap_seconds": round(c.longest_gap_seconds, 3),
        "gaps": [
            {
                "start": _t(g.start),
                "end": _t(g.end),
                "seconds": round(g.seconds, 3),
                "cause": g.cause,
            }
            for g in c.gaps
        ],
        "stop_writes": c.stop_writes,
        "owners": list(c.owners),
    }


def report_json(report: Report) -> dict[str, Any]:
    p = report.pnl
    states: dict[str, int] = {}
    for position in report.positions:
        states[position.state] = states.get(position.state, 0) + 1
    return {
        "period": {"first_event": _t(report.first_event), "last_event": _t(report.last_event)},
        "summary": {
            "events": report.events,
            "positions": len(report.positions),
            "positions_by_state": dict(sorted(states.items())),
            "held_on_venue": len(report.coverage),
            "still_open": sum(1 for c in report.coverage if c.still_open),
            "open_seconds": round(report.open_seconds, 3),
            "unprotected_seconds": round(report.unprotected_seconds, 3),
            "stop_coverage_pct": report.coverage_pct,
            "longest_gap_seconds": round(
                max((c.longest_gap_seconds for c in report.coverage), default=0.0), 3
            ),
            "races": len(report.races),
            "pnl_total": _money(p.total),
            "errors": sum(report.errors.get("ERROR", {}).values()),
            "critical": sum(report.errors.get("CRITICAL", {}).values()),
        },
        "coverage": [_coverage_json(c) for c in report.coverage],
        "races": [attrs.asdict(r) | {"at": _t(r.at)} for r in report.races],
        "latency_ms": {k: attrs.asdict(v) for k, v in report.latency.items()},
        "trailing": attrs.asdict(report.trailing),
        "pnl": {
            "total": _money(p.total),
            "by_exchange": {k: _money(v) for k, v in p.by_exchange.items()},
            "by_day": {k: _money(v) for k, v in p.by_day.items()},
            "by_position": {k: _money(v) for k, v in p.by_position.items()},
            "wins": p.wins,
            "losses": p.losses,
            "unknown": p.unknown,
        },
        "errors": {k: dict(v) for k, v in report.errors.items()},
    }


# -- text ----------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Plain aligned columns (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str], source: Sequence[object] | None) -> str:
        parts = []
        for i, text in enumerate(row):
            numeric = source is not None and isinstance(source[i], int | float | Decimal)
            parts.append(text.rjust(widths[i]) if numeric else text.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    out = [line(cells[0], None), "  ".join("-" * w for w in widths)]
    out += [line(c, r) for c, r in zip(cells[1:], rows, strict=True)]
    return out


def report_text(report: Report) -> str:
    lines = [
        "tradecore report",
        f"period: {_t(report.first_event)} .. {_t(report.last_event)}  ({report.events} events)",
        "",
        "SUMMARY",
        *_summary_lines(report),
        "",
        "STOP COVERAGE (fill -> close; unprotected = no live stop on the venue)",
        *_coverage_lines(report.coverage),
        "",
        "RACES (two stop owners writing within 1 s; two stops live longer than 2 s)",
        *_race_lines(report.races),
        "",
        "LATENCY (ms)",
        *_latency_lines(report.latency),
        "",
        "TRAILING STOPS",
        *_trailing_lines(report.trailing),
        "",
        "PNL",
        *_pnl_lines(report.pnl),
        "",
        "ERRORS AND WARNINGS BY TYPE",
        *_error_lines(report.errors),
    ]
    return "\n".join(lines) + "\n"


def _summary_lines(report: Report) -> list[str]:
    summary = report_json(report)["summary"]
    states = summary.pop("positions_by_state")
    lines = table(["figure", "value"], list(summary.items()))
    return [*lines, "positions by state: " + ", ".join(f"{k}={v}" for k, v in states.items())]


def _coverage_lines(coverage: Sequence[Coverage]) -> list[str]:
    headers = ["position", "exchange", "symbol", "open s", "unprotected s", "coverage %"]
    headers += ["fill->stop s", "longest gap s", "stop writes", "owners"]
    rows: list[list[object]] = []
    for c in coverage:
        first = None if c.first_stop_seconds is None else round(c.first_stop_seconds, 3)
        rows.append(
            [
                c.position_id,
                c.exchange,
                c.symbol,
                round(c.open_seconds, 3),
                round(c.unprotected_seconds, 3),
                round(100 * c.coverage, 3),
                first,
                round(c.longest_gap_seconds, 3),
                c.stop_writes,
                ",".join(c.owners),
            ]
        )
    return table(headers, rows)


def _race_lines(races: Sequence[Race]) -> list[str]:
    if not races:
        return ["none"]
    rows = [(r.position_id, _t(r.at), r.kind, r.detail) for r in races]
    return table(["position", "at", "kind", "detail"], rows)


def _latency_lines(latency: Mapping[str, Percentiles]) -> list[str]:
    rows = [(k, v.count, v.p50_ms, v.p90_ms, v.p99_ms, v.max_ms) for k, v in latency.items()]
    return table(["operation", "count", "p50", "p90", "p99", "max"], rows)


def _trailing_lines(t: TrailingStats) -> list[str]:
    rows: list[tuple[str, object]] = [
        ("created", t.created),
        ("activated", t.activated),
        ("updates", t.updates),
        ("breakevens", t.breakevens),
        ("removed", t.removed),
        ("updates per activated position", t.updates_per_activated),
    ]
    if t.activation_delay is not None:
        rows.append(("fill -> activation p50 s", t.activation_delay.p50_ms / 1000))
    if t.update_interval is not None:
        rows.append(("between updates p50 s", t.update_interval.p50_ms / 1000))
    return table(["figure", "value"], rows)


def _pnl_lines(p: Pnl) -> list[str]:
    lines = [f"total {_money(p.total)}   wins {p.wins}  losses {p.losses}  unknown {p.unknown}"]
    lines += table(["exchange", "pnl"], [(k, v) for k, v in p.by_exchange.items()])
    lines += table(["day (UTC)", "pnl"], [(k, v) for k, v in p.by_day.items()])
    lines += table(["position", "pnl"], [(k, v) for k, v in p.by_position.items()])
    return lines


def _error_lines(errors: Mapping[str, Mapping[str, int]]) -> list[str]:
    rows = [(sev, kind, n) for sev, kinds in errors.items() for kind, n in kinds.items()]
    return table(["severity", "event type", "count"], rows) if rows else ["none"]


# -- one position's story ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Story:
    position: PositionRow | None
    events: tuple[EventRow, ...]


async def position_story(reader: Reader, position_id: str) -> Story:
    positions = [p for p in await reader.positions() if p.id == position_id]
    return Story(
        position=positions[0] if positions else None,
        events=tuple(await reader.events_of(position_id)),
    )


def _event_json(event: EventRow) -> dict[str, Any]:
    return {
        "at": _t(event.created_at),
        "type": event.type,
        "severity": event.severity,
        "order_id": event.order_id,
        "data": dict(event.data),
        "error": event.error_message,
    }


def story_json(story: Story) -> dict[str, Any]:
    position = None
    if story.position is not None:
        position = {
            k: (_money(v) if isinstance(v, Decimal) else _t(v) if isinstance(v, datetime) else v)
            for k, v in attrs.asdict(story.position).items()
        }
    return {"position": position, "events": [_event_json(e) for e in story.events]}


def story_text(story: Story) -> str:
    p = story.position
    lines = []
    if p is not None:
        lines.append(
            f"position {p.id}  {p.exchange} {p.symbol} {p.side}  state={p.state}  "
            f"qty={p.quantity} entry={p.entry_price} exit={p.exit_price} pnl={p.realized_pnl}"
        )
        if p.close_reason:
            lines.append(f"closed: {p.close_reason}")
    start = story.events[0].created_at if story.events else None
    for e in story.events:
        offset = (e.created_at - start).total_seconds() if start else 0.0
        details = " ".join(f"{k}={v}" for k, v in e.data.items() if v is not None)
        order = f" order={e.order_id}" if e.order_id else ""
        error = f"  ERROR: {e.error_message}" if e.error_message else ""
        stamp = e.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        lines.append(
            f"{stamp}  +{offset:9.3f}s  {e.severity:<8} {e.type:<28}{order} "
            f"{details}{error}".rstrip()
        )
    return "\n".join(lines) + "\n"


# -- charts --------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def equity_chart(p: Pnl, path: Path) -> Path:
    """Cumulative realised PnL over close time."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 4))
    try:
        times = [at for at, _ in p.equity]
        values = [float(v) for _, v in p.equity]  # plotting only; the figures stay Decimal
        axes.step(times, values, where="post", color="tab:blue")
        axes.axhline(0, color="grey", linewidth=0.5)
        axes.set_title(f"equity (realised PnL, total {_money(p.total)})")
        axes.set_ylabel("PnL (quote)")
        figure.autofmt_xdate()
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


def position_chart(story: Story, path: Path) -> Path:
    """The prices known from the events (fill, marks, exit) and the stop as it moved."""
    plt = _pyplot()
    prices: list[tuple[datetime, float]] = []
    stops: list[tuple[datetime, float | None]] = []
    for e in story.events:
        if e.type == "entry_order_filled" and e.data.get("average_price") is not None:
            prices.append((e.created_at, float(e.data["average_price"])))
        if e.data.get("mark") is not None:
            prices.append((e.created_at, float(e.data["mark"])))
        if e.type in ("stop_loss_placed", "stop_loss_replaced") and e.data.get("price"):
            stops.append((e.created_at, float(e.data["price"])))
        if e.type == "position_closed":
            stops.append((e.created_at, None))
    position = story.position
    if position is not None and position.exit_price is not None and position.closed_at:
        prices.append((position.closed_at, float(position.exit_price)))
    figure, axes = plt.subplots(figsize=(9, 4))
    try:
        if prices:
            axes.plot(*zip(*sorted(prices), strict=True), "o-", label="price", color="tab:blue")
        if stops:
            times = [t for t, _ in stops]
            values = [float("nan") if v is None else v for _, v in stops]
            axes.step(times, values, where="post", label="stop", color="tab:red")
        name = position.symbol if position is not None else ""
        axes.set_title(f"{name} {story.events[0].subject if story.events else ''}".strip())
        axes.legend(loc="best")
        figure.autofmt_xdate()
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path
