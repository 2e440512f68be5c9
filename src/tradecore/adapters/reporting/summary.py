"""The paper session's closing table: what the bot did, and what the venue's books prove."""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from tradecore.adapters.paper import VenueEngine
from tradecore.adapters.reporting.analysis import Pnl
from tradecore.adapters.reporting.telemetry import Telemetry
from tradecore.domain.events import EventType
from tradecore.domain.signals import Fate
from tradecore.domain.waves import WaveReport

E = EventType
# The venue books who closed a position by the origin of the last fill.
_CLOSERS = {"api": "bot's order", "manual": "by hand"}


@attrs.frozen(kw_only=True)
class Summary:
    waves: int
    waves_with_signals: int
    waves_duplicate: int  # already processed (a second session on the same database)
    signals: int
    malformed: int
    fates: Mapping[str, int]  # every signal received and every malformed message, once
    opened: int
    rejected: Mapping[str, int]
    positions: int
    closed_by: Mapping[str, int]
    open_at_end: int
    coverage_percent: float
    unprotected_seconds: float
    longest_unprotected_seconds: float
    max_stops: int
    stop_moves: int
    trailing_activations: int
    aged_positions: int
    aged_exits: int
    zombies: int
    critical_errors: int
    pnl: Decimal
    realized_pnl: Decimal
    database: str
    # closed positions whose realized PnL the journal lacks (0 once every close is settled)
    unsettled: int = 0

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _, __, v: _plain(v))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


def summarize(
    *,
    telemetry: Telemetry,
    reports: Sequence[WaveReport],
    engine: VenueEngine,
    now: datetime,
    start: datetime,
    starting_balance: Decimal,
    database: str,
    journal: Pnl | None = None,
) -> Summary:
    """The session's table. `journal` is the realized PnL as journaled (the report's own
    figures, from the venue's fills and funding); without it (an in-memory database no
    reader can open) realized PnL is the venue's wallet change less what is still open."""
    t, books = telemetry, engine.books
    held = sum(((r.closed_at or now) - r.opened_at).total_seconds() for r in books.positions)
    unprotected = books.unprotected_seconds(now)
    closed_by = Counter(r.close_reason or "?" for r in books.positions if r.closed_at is not None)
    balance = engine.balance()
    unrealized = sum((p.unrealized_pnl or Decimal(0) for p in engine.positions()), Decimal(0))
    processed = [r for r in reports if not r.duplicate]
    return Summary(
        waves=len(processed),
        waves_with_signals=sum(1 for r in processed if r.found),
        waves_duplicate=len(reports) - len(processed),
        signals=t.count(E.SIGNAL_RECEIVED),
        malformed=t.count(E.SIGNAL_REJECTED),
        fates={fate.value: t.fates[fate.value] for fate in Fate if t.fates[fate.value]},
        opened=sum(r.opened for r in processed),
        rejected=dict(sorted(t.rejections.items(), key=lambda kv: (-kv[1], kv[0]))),
        positions=len(books.positions),
        closed_by=dict(sorted(closed_by.items())),
        open_at_end=len(engine.positions()),
        # Sums of float seconds: reported to the microsecond, so the order they were added in
        # (which differs between databases) cannot show.
        coverage_percent=100.0 if held == 0 else round(100.0 * (held - unprotected) / held, 6),
        unprotected_seconds=round(unprotected, 6),
        longest_unprotected_seconds=books.longest_unprotected(now),
        max_stops=books.max_stops(),
        stop_moves=t.stop_moves,
        trailing_activations=t.count(E.TRAILING_STOP_ACTIVATED),
        aged_positions=t.count(E.AGED_POSITION_DETECTED),
        aged_exits=t.aged_exits,
        zombies=t.count(E.ZOMBIE_ORDER_CANCELLED),
        critical_errors=t.count(E.CRITICAL_ERROR),
        pnl=(balance.total - starting_balance).quantize(Decimal("0.01")),
        realized_pnl=(
            journal.total if journal is not None else balance.total - unrealized - starting_balance
        ).quantize(Decimal("0.01")),
        database=database,
        unsettled=0 if journal is None else journal.unknown,
    )


_FATES = {
    Fate.OPENED: "opened",
    Fate.OPEN_FAILED: "open failed",
    Fate.OPEN_UNPROVEN: "open sent, unproven",
    Fate.FILTERED: "filtered",
    Fate.RANKED_OUT: "ranked out",
    Fate.RESERVE_UNUSED: "reserve not needed",
    Fate.DUPLICATE: "duplicate",
    Fate.EXPIRED: "expired",
    Fate.REJECTED: "malformed, refused",
}


def _fate_rows(s: Summary) -> list[tuple[str, str]]:
    """Where every signal ended: the fates add up to what was received (issue 12)."""
    rows = [(f"  fate: {_FATES[Fate(k)]}", str(n)) for k, n in s.fates.items()]
    accounted = sum(s.fates.values())
    received = s.signals + s.malformed
    balance = "all accounted for" if accounted == received else f"{received - accounted} missing"
    rows.append(("  fates recorded", f"{accounted} of {received} ({balance})"))
    return rows


def render(summary: Summary) -> str:
    s = summary
    duplicates = f"; {s.waves_duplicate} already processed, skipped" if s.waves_duplicate else ""
    rows: list[tuple[str, str]] = [
        ("waves processed", f"{s.waves} ({s.waves_with_signals} with signals{duplicates})"),
        ("signals received", f"{s.signals} (+{s.malformed} malformed, refused)"),
    ]
    rows += _fate_rows(s)
    rows += [("positions opened", str(s.opened))]
    rows += [(f"  rejected: {reason}", str(n)) for reason, n in s.rejected.items()]
    closed = ", ".join(f"{_CLOSERS.get(k, k)} {v}" for k, v in s.closed_by.items()) or "none"
    rows += [
        (
            "positions on the venue",
            f"{s.positions} (closed by: {closed}; open at end {s.open_at_end})",
        ),
        ("stop coverage", f"{s.coverage_percent:.4f} % of position time"),
        (
            "unprotected time",
            f"{s.unprotected_seconds:.3f} s in total, "
            f"longest {s.longest_unprotected_seconds:.3f} s",
        ),
        ("most stops at once", str(s.max_stops)),
        ("stop moves", str(s.stop_moves)),
        ("trailing activations", str(s.trailing_activations)),
        ("aged positions / aged exits", f"{s.aged_positions} / {s.aged_exits}"),
        ("zombie orders cancelled", str(s.zombies)),
        ("critical errors", str(s.critical_errors)),
        ("PnL (equity change)", f"{s.pnl} USDT"),
        (
            "realized PnL (journal)",
            f"{s.realized_pnl} USDT, from the venue's fills and funding"
            + (f" ({s.unsettled} closed positions not settled)" if s.unsettled else ""),
        ),
        ("events", s.database),
    ]
    width = max(len(label) for label, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = ["paper session summary", rule]
    lines += [f"{label.ljust(width)}  {value}" for label, value in rows]
    lines.append(rule)
    return "\n".join(lines)
