"""The dashboard's view model: what the page shows, built from rows already read.

Pure functions over the journal's rows (`reporting.source`) and the live facts a running bot
adds (`Live`); no I/O, no clock. Money travels as exact decimal strings, time as ISO 8601.
Unprotected time per position is the post-run report's own measure (`analysis.coverage_of`),
so the page and `report` never disagree.
"""

import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.adapters.reporting.analysis import STOP_WRITES, by_subject, coverage_of, pnl
from tradecore.adapters.reporting.monitor import OPEN_ON_VENUE
from tradecore.adapters.reporting.source import AlertRow, EventRow, PositionRow, TrailingRow
from tradecore.domain.aged import AgedParams, concession_percent, decide_aged
from tradecore.domain.model import Side

ONE_TICK = Decimal("0.00000001")  # the aged schedule's price is shown unrounded to the market
WAVES_SHOWN = 5
CLOSED_SHOWN = 20
FATE_EVENTS = (
    "signal_executed",
    "signal_execution_failed",
    "signal_filtered",
    "signal_ranked_out",
    "signal_expired",
    "signal_rejected",
)
WAVE_EVENTS = ("wave_completed", "wave_not_found", "wave_duplicate_detected", "wave_skipped")


@attrs.frozen(kw_only=True)
class Live:
    """What only the running bot knows: the last marks, what its last protection pass left
    bare (None: not known here) and its `/health` body."""

    marks: Mapping[str, Decimal] = attrs.Factory(dict)
    unprotected: frozenset[str] | None = None  # symbols
    checked_at: datetime | None = None
    health: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class Inputs:
    now: datetime
    positions: Sequence[PositionRow]
    events: Sequence[EventRow]  # of the positions shown (open, and the last closed ones)
    fates: Sequence[EventRow]  # the last fate and wave events
    lifecycle: Sequence[EventRow]  # the last events saying how the bot and its links are
    trailing: Sequence[TrailingRow]
    alerts: Sequence[AlertRow]
    aged: AgedParams = attrs.Factory(AgedParams)
    live: Live | None = None


def shown_positions(positions: Sequence[PositionRow]) -> list[PositionRow]:
    """The positions whose story the page tells: every open one and the last closed ones."""
    held = [p for p in positions if p.state in OPEN_ON_VENUE]
    closed = [p for p in positions if p.closed_at is not None and p.state not in OPEN_ON_VENUE]
    closed.sort(key=lambda p: p.closed_at or p.created_at)
    return held + closed[-CLOSED_SHOWN:]


def build_view(inputs: Inputs) -> dict[str, Any]:
    grouped = by_subject(inputs.events)
    shown = shown_positions(inputs.positions)
    coverage = {}
    for position in shown:
        found, _ = coverage_of(position, grouped.get(position.id, []), now=inputs.now)
        if found is not None:
            coverage[position.id] = found
    held = [p for p in shown if p.state in OPEN_ON_VENUE]
    unprotected = _unprotected(held, grouped, inputs)
    open_rows = [_position(p, grouped.get(p.id, []), coverage, inputs) for p in held]
    return {
        "now": _t(inputs.now),
        "source": "bot" if inputs.live is not None else "database",
        "positions": open_rows,
        "unprotected": unprotected,
        "coverage": [
            {
                "position_id": c.position_id,
                "symbol": c.symbol,
                "exchange": c.exchange,
                "still_open": c.still_open,
                "open_seconds": round(c.open_seconds, 3),
                "unprotected_seconds": round(c.unprotected_seconds, 3),
                "longest_gap_seconds": round(c.longest_gap_seconds, 3),
                "coverage_pct": round(100 * c.coverage, 3),
            }
            for c in coverage.values()
        ],
        "waves": _waves(inputs.fates),
        "alerts": [
            {
                "at": _t(a.created_at),
                "severity": a.severity,
                "title": a.title,
                "text": a.text,
                "delivered": a.delivered,
            }
            for a in reversed(inputs.alerts)
        ],
        "pnl": _pnl(inputs.positions, open_rows),
        "health": _health(inputs, unprotected),
    }


# -- positions -------------------------------------------------------------------------------


def _position(
    p: PositionRow,
    events: Sequence[EventRow],
    coverage: Mapping[str, Any],
    inputs: Inputs,
) -> dict[str, Any]:
    trailing = {t.position_id: t for t in inputs.trailing}.get(p.id)
    mark = (inputs.live.marks if inputs.live is not None else {}).get(p.symbol)
    opened = p.opened_at or p.created_at
    last_move = next((e for e in reversed(events) if e.type in STOP_WRITES), None)
    covered = coverage.get(p.id)
    unrealized = None
    if mark is not None and p.entry_price is not None:
        sign = 1 if p.side == Side.LONG.value else -1
        unrealized = sign * (mark - p.entry_price) * p.quantity
    return {
        "id": p.id,
        "exchange": p.exchange,
        "symbol": p.symbol,
        "side": p.side,
        "state": p.state,
        "quantity": _m(p.quantity),
        "entry": _m(p.entry_price),
        "mark": _m(mark),
        "stop": _m(p.stop_price),
        "stop_owner": p.stop_owner,
        "last_move_at": _t(last_move.created_at) if last_move else None,
        "last_move": _move_text(last_move),
        "trailing_phase": trailing.phase if trailing else None,
        "trailing_updates": trailing.update_count if trailing else 0,
        "opened_at": _t(opened),
        "aged": _aged(p, opened, inputs),
        "unprotected_seconds": round(covered.unprotected_seconds, 3) if covered else None,
        "unrealized_pnl": _m(unrealized),
    }


def _move_text(event: EventRow | None) -> str | None:
    if event is None:
        return None
    data = event.data
    parts = [str(data.get("owner") or "?")]
    reason = data.get("reason")
    if reason:
        parts.append(str(reason))
    old, new = data.get("previous_price"), data.get("price")
    if old and new:
        parts.append(f"{old} → {new}")
    return " · ".join(parts)


def _aged(p: PositionRow, opened: datetime, inputs: Inputs) -> dict[str, Any]:
    """Where the position is in the aged schedule (SPEC §7), and when each next step comes."""
    params = inputs.aged
    aged_at = opened + _hours(params.max_position_age_hours)
    grace_ends = aged_at + _hours(params.grace_period_hours)
    schedule = {
        "aged_at": _t(aged_at),
        "grace_ends_at": _t(grace_ends),
        "cap_at": _t(grace_ends + _hours(hours_to_cap(params))),
    }
    if p.entry_price is None or p.quantity <= 0:
        return {"phase": "unknown", **schedule}
    decision = decide_aged(
        entry_price=p.entry_price,
        side=Side(p.side),
        quantity=p.quantity,
        opened_at=opened,
        now=inputs.now,
        params=params,
        tick_size=ONE_TICK,
    )
    return {
        "phase": decision.phase.value,
        "target_price": _m(decision.target_price),
        "loss_percent": _m(decision.loss_percent),
        **schedule,
    }


@functools.lru_cache(maxsize=8)  # the same parameters on every refresh
def hours_to_cap(params: AgedParams) -> Decimal:
    """Hours past grace until the concession reaches `max_loss_percent` (to the minute)."""
    step = params.loss_step_percent
    if step <= 0:
        return Decimal(10_000)  # never: shown as a date far away
    low, high = Decimal(0), Decimal(1)
    while concession_percent(high, params) < params.max_loss_percent:
        low, high = high, high * 2
    while high - low > Decimal(1) / 60:
        middle = (low + high) / 2
        if concession_percent(middle, params) < params.max_loss_percent:
            low = middle
        else:
            high = middle
    return high


def _hours(hours: Decimal) -> timedelta:
    return timedelta(seconds=float(hours * 3600))


def _unprotected(
    held: Sequence[PositionRow], grouped: Mapping[str, Sequence[EventRow]], inputs: Inputs
) -> dict[str, Any]:
    """Unprotected now: the bot's last protection pass when served by the bot, else the
    journal's picture (no stop recorded, or the guard's last look found none)."""
    live = inputs.live
    if live is not None and live.unprotected is not None:
        symbols = sorted(live.unprotected)
        ids = [p.id for p in held if p.symbol in live.unprotected]
        return {
            "count": len(symbols),
            "symbols": symbols,
            "position_ids": ids,
            "checked_at": _t(live.checked_at),
            "by": "the last protection pass",
        }
    bare = [p for p in held if p.stop_price is None or _found_bare(grouped.get(p.id, []))]
    return {
        "count": len(bare),
        "symbols": sorted(p.symbol for p in bare),
        "position_ids": [p.id for p in bare],
        "checked_at": None,
        "by": "the journal",
    }


def _found_bare(events: Sequence[EventRow]) -> bool:
    last = next(
        (e for e in reversed(events) if e.type in (*STOP_WRITES, "unprotected_position_found")),
        None,
    )
    return last is not None and last.type == "unprotected_position_found"


# -- waves -----------------------------------------------------------------------------------


def _waves(events: Sequence[EventRow]) -> list[dict[str, Any]]:
    """The last waves, newest first, each with every signal's fate."""
    waves: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for event in events:
        wave = event.correlation_id or "(no wave)"
        if wave not in waves:
            waves[wave] = {"wave": wave, "at": _t(event.created_at), "outcome": None, "signals": []}
            order.append(wave)
        entry = waves[wave]
        if event.type in WAVE_EVENTS:
            entry["outcome"] = event.type
            continue
        if "fate" not in event.data:
            continue
        data = event.data
        entry["signals"].append(
            {
                "signal_id": data.get("signal_id"),
                "symbol": event.symbol,
                "fate": data.get("fate"),
                "reason": data.get("reason") or data.get("error") or event.error_message,
            }
        )
    shown = [waves[w] for w in order[-WAVES_SHOWN:]]
    for entry in shown:
        entry["fates"] = dict(Counter(str(s["fate"]) for s in entry["signals"]))
    return list(reversed(shown))


# -- money -----------------------------------------------------------------------------------


def _pnl(
    positions: Sequence[PositionRow], open_rows: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    realized = pnl(positions)
    marked = [Decimal(r["unrealized_pnl"]) for r in open_rows if r["unrealized_pnl"] is not None]
    return {
        "realized": _m(realized.total),
        "unrealized": _m(sum(marked, Decimal(0))) if marked else None,
        "wins": realized.wins,
        "losses": realized.losses,
        "closed": len(realized.by_position),
        "by_exchange": {k: _m(v) for k, v in realized.by_exchange.items()},
        "equity": [[_t(at), _m(value)] for at, value in realized.equity],
    }


# -- health ----------------------------------------------------------------------------------


def _health(inputs: Inputs, unprotected: Mapping[str, Any]) -> dict[str, Any]:
    live = inputs.live
    if live is not None and live.health is not None:
        return _bot_health(live.health)
    return _journal_health(inputs.lifecycle, unprotected)


def _bot_health(body: Mapping[str, Any]) -> dict[str, Any]:
    """`/health`'s body (app.health.judge) as one row per component."""
    running = bool(body.get("running"))
    rows = [_row("kernel", running, "running" if running else "not running")]
    database = body.get("database", {})
    waiting = f"writes waiting {database.get('writes_waiting', 0)}"
    rows.append(_row("database", bool(database.get("ok")), waiting))
    for venue, facts in sorted(body.get("venues", {}).items()):
        detail = f"last failure {facts.get('last_failure') or 'none'}"
        rows.append(_row(f"venue {venue}", bool(facts.get("ok")), detail))
    stream = body.get("signal_stream", {})
    last_signal = body.get("last_signal") or "none"
    detail = f"{stream.get('kind')}, last signal {last_signal}"
    rows.append(_row("signal stream", bool(stream.get("ok")), detail))
    for name, state in sorted(body.get("loops", {}).items()):
        rows.append(_row(f"loop {name}", state != "died", str(state)))
    bare = int(body.get("unprotected") or 0)
    checked = body.get("last_protection_check") or "not yet"
    rows.append(_row("protection", bare == 0, f"{bare} unprotected, checked {checked}"))
    return {"status": body.get("status", "unknown"), "components": rows}


def _journal_health(events: Sequence[EventRow], unprotected: Mapping[str, Any]) -> dict[str, Any]:
    """From the journal alone (a bot on another machine, or a past session)."""
    last: dict[str, EventRow] = {}
    for event in events:
        last[event.type] = event

    def after(one: str, other: str) -> bool:
        a, b = last.get(one), last.get(other)
        return a is not None and (b is None or a.seq > b.seq)

    running = after("bot_started", "bot_stopped")
    outage = after("database_unavailable", "database_restored")
    stream_down = after("websocket_disconnected", "websocket_connected")
    kernel = _since("started", last.get("bot_started")) if running else None
    rows = [
        _row("kernel", running, kernel or _since("stopped", last.get("bot_stopped"))),
        _row("database", not outage, "outage not yet restored" if outage else "no open outage"),
        _row("signal stream", not stream_down, "disconnected" if stream_down else "connected"),
        _row("protection", unprotected["count"] == 0, f"{unprotected['count']} unprotected"),
    ]
    healthy = all(r["ok"] for r in rows)
    return {"status": "ok" if healthy else "unhealthy", "components": rows}


def _since(word: str, event: EventRow | None) -> str:
    return f"{word} {_t(event.created_at)}" if event is not None else f"never {word}"


def _row(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


LIFECYCLE_EVENTS = (
    "bot_started",
    "bot_stopped",
    "database_unavailable",
    "database_restored",
    "websocket_connected",
    "websocket_disconnected",
)


def _m(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def digest_key(view: Mapping[str, Any]) -> Any:
    """The view without what changes by the clock alone: two views with the same key show
    the same facts (the page ages positions itself between pushes)."""
    return {k: v for k, v in view.items() if k != "now"}
