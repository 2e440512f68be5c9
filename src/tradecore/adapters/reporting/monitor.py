"""The live monitor: a snapshot of the SPEC §10 figures from the database every interval, with
anomalies graded CRITICAL / WARNING / INFO, rendered as a table and as a JSON line.

Everything comes from the database (positions as tradecore recorded them, events in the
window since the previous snapshot), so the monitor can watch a bot from another process or
machine. It reads, never writes; the exchange remains the source of truth.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.adapters.reporting.analysis import pnl
from tradecore.adapters.reporting.report import table
from tradecore.adapters.reporting.source import TERMINAL, EventRow, PositionRow, Reader

OPEN_ON_VENUE = frozenset({"entry_placed", "pending_sl", "active", "closing"})
LEVELS = ("CRITICAL", "WARNING", "INFO")

# figure name -> the event types it counts in the window
COUNTED: Mapping[str, tuple[str, ...]] = {
    "signals": ("signal_received",),
    "opened": ("entry_order_filled",),
    "closed": ("position_closed",),
    "rollbacks": ("position_rollback",),
    "ts_activations": ("trailing_stop_activated",),
    "stop_updates": ("stop_loss_replaced",),
    "stop_failures": ("stop_loss_failed",),
    "aged_detected": ("aged_position_detected",),
    "aged_exits": ("aged_exit_order_placed",),
    "zombies_detected": ("zombie_orders_detected",),
    "zombies_cancelled": ("zombie_order_cancelled",),
    "disconnects": ("websocket_disconnected",),
    "reconnects": ("websocket_connected",),
    "db_outages": ("database_unavailable",),
}


@attrs.frozen(kw_only=True)
class MonitorSettings:
    interval_seconds: float = 60.0
    unprotected_grace_seconds: float = 30.0  # an open in progress is not yet an incident
    max_unprotected: int = 5  # SPEC §10: more than this many is its own alert
    signal_silence_seconds: float = 1800.0  # waves come every 15 minutes
    journal_silence_seconds: float = 600.0  # the guard alone writes an event every few minutes


@attrs.frozen(kw_only=True)
class Anomaly:
    level: str
    code: str
    message: str


@attrs.frozen(kw_only=True)
class Snapshot:
    at: datetime
    since: datetime
    positions_by_exchange: Mapping[str, int]
    unprotected: tuple[str, ...]
    counts: Mapping[str, int]
    errors: int
    criticals: int
    last_signal_at: datetime | None
    last_event_at: datetime | None
    spool_bytes: int | None
    anomalies: tuple[Anomaly, ...]
    pnl: Decimal | None = None  # realized, every closed position; None: the database unread
    rows: tuple[PositionRow, ...] = ()  # every position read: the totals over accounts count
    # each once (`watch.round_total`); not printed

    @property
    def worst(self) -> str | None:
        return next((lvl for lvl in LEVELS if any(a.level == lvl for a in self.anomalies)), None)


async def take_snapshot(
    reader: Reader,
    *,
    now: datetime,
    since: datetime,
    settings: MonitorSettings | None = None,
    spool_bytes: int | None = None,
    previous_spool_bytes: int | None = None,
) -> Snapshot:
    settings = settings or MonitorSettings()
    every = await reader.positions()
    positions = [p for p in every if p.state not in TERMINAL]
    counts = await reader.count_by_type(since, now)
    problems = await reader.problems(since, now)
    last_signal = await reader.last_of("signal_received")
    last_event = await reader.last_event_at()
    outage = await _outage_open(reader)
    held = [p for p in positions if p.state in OPEN_ON_VENUE]
    bare = await reader.found_bare()  # the guard's last look: the venue had no stop
    unprotected = [p for p in held if p.stop_price is None or p.id in bare]
    figures = {name: sum(counts.get(t, 0) for t in types) for name, types in COUNTED.items()}
    anomalies = [
        *_unprotected_anomalies(unprotected, now, settings),
        *_problem_anomalies(problems),
        *_silence_anomalies(now, last_signal, last_event, settings),
        *_outage_anomalies(outage, spool_bytes, previous_spool_bytes),
        *_info_anomalies(figures),
    ]
    return Snapshot(
        at=now,
        since=since,
        positions_by_exchange=dict(sorted(Counter(p.exchange for p in held).items())),
        unprotected=tuple(p.id for p in unprotected),
        counts=figures,
        errors=sum(1 for e in problems if e.severity == "ERROR"),
        criticals=sum(1 for e in problems if e.severity == "CRITICAL"),
        last_signal_at=last_signal,
        last_event_at=last_event,
        spool_bytes=spool_bytes,
        anomalies=tuple(sorted(anomalies, key=lambda a: LEVELS.index(a.level))),
        pnl=pnl(every).total,
        rows=tuple(every),
    )


def failed_snapshot(now: datetime, since: datetime, error: str) -> Snapshot:
    """The snapshot when the database cannot be read at all."""
    return Snapshot(
        at=now,
        since=since,
        positions_by_exchange={},
        unprotected=(),
        counts={},
        errors=0,
        criticals=0,
        last_signal_at=None,
        last_event_at=None,
        spool_bytes=None,
        anomalies=(Anomaly(level="CRITICAL", code="database_unreachable", message=error),),
    )


async def _outage_open(reader: Reader) -> bool:
    down = await reader.last_of("database_unavailable")
    if down is None:
        return False
    up = await reader.last_of("database_restored")
    return up is None or up < down


def _age(position: PositionRow, now: datetime) -> float:
    return (now - (position.opened_at or position.created_at)).total_seconds()


def _unprotected_anomalies(
    unprotected: Sequence[PositionRow], now: datetime, settings: MonitorSettings
) -> list[Anomaly]:
    found = []
    for p in unprotected:
        age = _age(p, now)
        overdue = age > settings.unprotected_grace_seconds
        found.append(
            Anomaly(
                level="CRITICAL" if overdue else "WARNING",
                code="unprotected_position",
                message=f"{p.id} {p.exchange} {p.symbol} {p.side} has no stop recorded "
                f"({p.state}, open {age:.0f} s)",
            )
        )
    if len(unprotected) > settings.max_unprotected:
        found.append(
            Anomaly(
                level="CRITICAL",
                code="many_unprotected",
                message=f"{len(unprotected)} positions without a stop (limit "
                f"{settings.max_unprotected})",
            )
        )
    return found


def _problem_anomalies(problems: Sequence[EventRow]) -> list[Anomaly]:
    found = []
    for severity, level in (("CRITICAL", "CRITICAL"), ("ERROR", "WARNING")):
        chosen = [e for e in problems if e.severity == severity]
        by_type = Counter(e.type for e in chosen)
        for kind, count in by_type.most_common():
            last = [e for e in chosen if e.type == kind][-1]
            where = " ".join(x for x in (last.exchange, last.symbol, last.subject) if x)
            detail = f": {last.error_message}" if last.error_message else ""
            found.append(
                Anomaly(
                    level=level,
                    code=kind,
                    message=f"{count} × {kind} (last {where}){detail}"[:300],
                )
            )
    return found


def _silence_anomalies(
    now: datetime,
    last_signal: datetime | None,
    last_event: datetime | None,
    settings: MonitorSettings,
) -> list[Anomaly]:
    found = []
    if last_signal is None:
        found.append(Anomaly(level="INFO", code="no_signal_yet", message="no signal received"))
    elif now - last_signal > timedelta(seconds=settings.signal_silence_seconds):
        found.append(
            Anomaly(
                level="WARNING",
                code="signal_silence",
                message=f"no signal for {(now - last_signal).total_seconds() / 60:.0f} min "
                f"(last {last_signal.isoformat()})",
            )
        )
    if last_event is not None and now - last_event > timedelta(
        seconds=settings.journal_silence_seconds
    ):
        found.append(
            Anomaly(
                level="WARNING",
                code="journal_silence",
                message=f"no event written for {(now - last_event).total_seconds():.0f} s: "
                "the bot is stopped or cannot reach the database",
            )
        )
    return found


def _outage_anomalies(outage: bool, spool: int | None, previous: int | None) -> list[Anomaly]:
    found = []
    if outage:
        found.append(
            Anomaly(
                level="CRITICAL",
                code="database_outage",
                message="database_unavailable without database_restored: events are spooling",
            )
        )
    if spool is not None and previous is not None and spool > previous:
        found.append(
            Anomaly(
                level="WARNING",
                code="spool_growing",
                message=f"journal spool grew {previous} -> {spool} bytes: the database is "
                "not taking events",
            )
        )
    return found


def _info_anomalies(figures: Mapping[str, int]) -> list[Anomaly]:
    notes = {
        "reconnects": "signal stream reconnected",
        "zombies_cancelled": "zombie orders cancelled",
        "aged_detected": "positions became aged",
        "rollbacks": "opens rolled back",
    }
    return [
        Anomaly(level="INFO", code=name, message=f"{figures[name]} {text}")
        for name, text in notes.items()
        if figures.get(name)
    ]


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "at": _t(snapshot.at),
        "since": _t(snapshot.since),
        "positions": sum(snapshot.positions_by_exchange.values()),
        "positions_by_exchange": dict(snapshot.positions_by_exchange),
        "unprotected": len(snapshot.unprotected),
        "unprotected_ids": list(snapshot.unprotected),
        **dict(snapshot.counts),
        "errors": snapshot.errors,
        "criticals": snapshot.criticals,
        "last_signal_at": _t(snapshot.last_signal_at),
        "last_event_at": _t(snapshot.last_event_at),
        "spool_bytes": snapshot.spool_bytes,
        "pnl": None if snapshot.pnl is None else format(snapshot.pnl, "f"),
        "worst": snapshot.worst,
        "anomalies": [attrs.asdict(a) for a in snapshot.anomalies],
    }


def snapshot_text(snapshot: Snapshot) -> str:
    figures = snapshot_json(snapshot)
    shown = [
        (k, v)
        for k, v in figures.items()
        if k not in ("anomalies", "unprotected_ids", "positions_by_exchange", "at", "since")
    ]
    by_exchange = ", ".join(f"{k}={v}" for k, v in snapshot.positions_by_exchange.items())
    lines = [
        f"== {snapshot.at:%Y-%m-%d %H:%M:%S} UTC  (window from {snapshot.since:%H:%M:%S}) ==",
        *table(["figure", "value"], [*shown[:1], ("by exchange", by_exchange or "-"), *shown[1:]]),
    ]
    lines += [f"[{a.level}] {a.code}: {a.message}" for a in snapshot.anomalies]
    return "\n".join(lines) + "\n"


def final_report(snapshots: Sequence[Snapshot]) -> dict[str, Any]:
    """The summary printed when the monitor stops."""
    totals: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    for s in snapshots:
        totals.update(s.counts)
        totals.update({"errors": s.errors, "criticals": s.criticals})
        levels.update(a.level for a in s.anomalies)
    worst = next((lvl for lvl in LEVELS if levels[lvl]), None)
    return {
        "snapshots": len(snapshots),
        "from": _t(snapshots[0].since) if snapshots else None,
        "to": _t(snapshots[-1].at) if snapshots else None,
        "totals": dict(totals),
        "anomalies": {lvl: levels[lvl] for lvl in LEVELS},
        "worst": worst,
        "last": snapshot_json(snapshots[-1]) if snapshots else None,
    }
