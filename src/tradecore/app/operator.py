"""The operator's read-only questions, answered from what the bot already knows.

`/status`, `/positions`, `/pnl` and `/health` (over Telegram: `adapters/alerts/telegram.py`).
The sources are the library's own state, handed in by whoever wires it (the runner): the
health verdict (`app.health.judge`'s body, exactly what `/health` serves), the protection
guard's view (`Kernel.protection_view()`), the open positions from the store, and the realized
PnL of closed positions from the journal (settled from the venue's fills by `domain.pnl`).
Nothing here calls the venue or writes anything. Each source is read with a time limit
(`SOURCE_SECONDS`): one that fails or is slow (the database down) makes that one answer say
so; nothing else waits for it.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.app.protection import ProtectionView
from tradecore.domain.positions import Position
from tradecore.ports.clock import Clock

SOURCE_SECONDS = 5.0
HELP = (
    "tradecore answers (read-only):\n"
    "/status - running or not, open and unprotected positions, last signal\n"
    "/positions - each open position with its entry and stop\n"
    "/pnl - realized PnL today, over 7 days and in all\n"
    "/health - every component's health, as the /health endpoint says it"
)


@attrs.frozen(kw_only=True)
class OperatorSources:
    clock: Clock
    mode: str
    venue: str
    open_positions: Callable[[], Awaitable[Sequence[Position]]]
    protection: Callable[[], ProtectionView]
    # (HTTP status, body) as `app.health.judge` gives them
    health: Callable[[], Awaitable[tuple[int, Mapping[str, Any]]]]
    # each closed position's close time and realized PnL (None: not settled yet)
    closed_pnl: Callable[[], Awaitable[Sequence[tuple[datetime, Decimal | None]]]]


class OperatorCommands:
    """`OperatorQueries` over `OperatorSources`."""

    def __init__(self, sources: OperatorSources) -> None:
        self._s = sources
        self._answers: dict[str, tuple[str, Callable[[], Awaitable[str]]]] = {
            "/status": ("the bot's state", self._status),
            "/positions": ("the open positions", self._positions),
            "/pnl": ("the journal's PnL", self._pnl),
            "/health": ("the health report", self._health),
        }

    async def answer(self, command: str) -> str:
        found = self._answers.get(command.strip().lower())
        if found is None:
            return HELP
        what, answer = found
        try:
            return await asyncio.wait_for(answer(), SOURCE_SECONDS)
        except Exception as exc:  # the database down, a source too slow: say so
            return f"{command}: cannot read {what} now ({type(exc).__name__}); trading goes on"

    async def _status(self) -> str:
        code, body = await self._s.health()
        view = self._s.protection()
        verdict = "ok" if code == 200 else "UNHEALTHY"
        running = "running" if body.get("running") else "NOT running"
        uptime = _duration(timedelta(seconds=float(body.get("uptime_seconds") or 0)))
        bare = ", ".join(sorted(view.symbols))
        checked = f", guard pass at {_clock(view.checked_at)}" if view.checked_at else ""
        died = ", ".join(body.get("loops_died") or []) or "none"
        return "\n".join(
            [
                f"tradecore {self._s.mode} on {self._s.venue}: {verdict}",
                f"{running}, up {uptime}",
                f"open positions: {_shown(body.get('positions'))}; unprotected: "
                f"{view.unprotected}{f' ({bare})' if bare else ''}{checked}",
                f"last signal: {_when(body.get('last_signal'))}",
                f"loops died: {died}",
            ]
        )

    async def _positions(self) -> str:
        positions = await self._s.open_positions()
        if not positions:
            return f"no open positions ({self._s.venue})"
        now = self._s.clock.now()
        lines = [f"{len(positions)} open position(s) ({self._s.venue}):"]
        for p in sorted(positions, key=lambda p: p.symbol):
            if p.stop_price is None:
                stop = "NO STOP"
            else:
                owner = f" ({p.stop_owner.value})" if p.stop_owner else ""
                stop = f"stop {_money(p.stop_price)}{owner}"
            since = p.opened_at or p.created_at
            lines.append(
                f"{p.symbol} {p.side.value} {_money(p.quantity)} @ {_money(p.entry_price)}, "
                f"{stop}, opened {_duration(now - since)} ago"
            )
        return "\n".join(lines)

    async def _pnl(self) -> str:
        closed = await self._s.closed_pnl()
        now = self._s.clock.now()
        settled = [(at, pnl) for at, pnl in closed if pnl is not None]
        today = [pnl for at, pnl in settled if at.date() == now.date()]
        week = [pnl for at, pnl in settled if now - at <= timedelta(days=7)]
        total = [pnl for _, pnl in settled]
        wins = sum(1 for pnl in total if pnl > 0)
        losses = sum(1 for pnl in total if pnl < 0)
        lines = [
            "realized PnL (USDT, closed positions, from the venue's fills):",
            f"today (UTC): {_money(sum(today, Decimal(0)))} over {len(today)} position(s)",
            f"last 7 days: {_money(sum(week, Decimal(0)))} over {len(week)}",
            f"all time: {_money(sum(total, Decimal(0)))} over {len(total)} "
            f"({wins} won, {losses} lost)",
        ]
        waiting = len(closed) - len(settled)
        if waiting:
            lines.append(f"{waiting} not settled yet (its fills are read back after the close)")
        return "\n".join(lines)

    async def _health(self) -> str:
        code, body = await self._s.health()
        database = body.get("database") or {}
        lines = [
            f"health: {'ok' if code == 200 else 'UNHEALTHY'} ({code})",
            f"database: {_ok(database.get('ok'))}, writes waiting "
            f"{_shown(database.get('writes_waiting'))}, events spooled "
            f"{_shown(database.get('events_spooled'))}",
        ]
        for name, venue in (body.get("venues") or {}).items():
            lines.append(
                f"venue {name}: {_ok(venue.get('ok'))}, last failure "
                f"{_when(venue.get('last_failure'))}, marks connected "
                f"{_shown(venue.get('marks_connected'))}"
            )
        stream = body.get("signal_stream") or {}
        lines.append(
            f"signal stream ({stream.get('kind')}): {_ok(stream.get('ok'))}, connected "
            f"{_shown(stream.get('connected'))}"
        )
        loops = ", ".join(
            f"{name} {'DIED' if state == 'died' else state}"
            for name, state in (body.get("loops") or {}).items()
        )
        lines.append(f"loops: {loops or 'none'}")
        bare = ", ".join(body.get("unprotected_symbols") or [])
        lines.append(
            f"protection: {_shown(body.get('unprotected'))} unprotected"
            f"{f' ({bare})' if bare else ''}, last check "
            f"{_when(body.get('last_protection_check'))}"
        )
        return "\n".join(lines)


def _money(value: Decimal | None) -> str:
    return "?" if value is None else format(value, "f")


def _ok(value: Any) -> str:
    return "ok" if value else "NOT OK"


def _shown(value: Any) -> str:
    return "unknown" if value is None else str(value)


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _when(iso: Any) -> str:
    if not isinstance(iso, str):
        return "never"
    try:
        return _clock(datetime.fromisoformat(iso))
    except ValueError:
        return iso


def _duration(span: timedelta) -> str:
    minutes = max(0, int(span.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"
