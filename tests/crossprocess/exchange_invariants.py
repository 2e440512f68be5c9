"""The promises, checked from outside on the loopback exchange's state (`/__loopback/state`)
against the lives of the runner processes that traded on it.

A runner that was killed cannot act until the next one has recovered, so every allowance
("one round trip after a fill", "one zombie interval") runs from the later of the moment it
began and the end of the next recovery when a kill came in between.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from tradecore.domain.orders import operation_of
from tradecore.domain.positions import Position, PositionState


@attrs.frozen(kw_only=True)
class Life:
    """One runner process: spawned, done recovering (None: killed before), ended."""

    spawned: datetime
    recovered: datetime | None
    ended: datetime | None


def _t(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def allowed_end(start: datetime, allowance: float, lives: Sequence[Life]) -> datetime | None:
    """Until when a condition that began at `start` may last: `allowance` seconds if the
    runner alive then had recovered and lived that long, else until the next recovery plus
    `allowance`; None when no runner has recovered since (nobody could act yet)."""
    span = timedelta(seconds=allowance)
    for life in lives:
        ended = life.ended or datetime.max.replace(tzinfo=start.tzinfo)
        if (
            life.spawned <= start <= ended
            and life.recovered is not None
            and life.recovered <= start
            and ended >= start + span
        ):
            return start + span
    later = [life.recovered for life in lives if life.recovered and life.recovered >= start]
    return min(later) + span if later else None


def _too_long(
    what: str, start: datetime, end: datetime, allowance: float, lives: Sequence[Life]
) -> str | None:
    limit = allowed_end(start, allowance, lives)
    if limit is None or end <= limit:
        return None
    over = (end - limit).total_seconds()
    return f"{what} from {start:%H:%M:%S.%f} to {end:%H:%M:%S.%f}: {over:.3f} s too long"


def protection_breaks(
    state: dict[str, Any], lives: Sequence[Life], *, round_trip: float
) -> list[str]:
    """No position without a stop, or with two, longer than one round trip (after the next
    recovery when the runner died in between); never three."""
    now = _t(state["now"])
    assert now is not None
    breaks = []
    for record in state["position_records"]:
        where = f"{record['symbol']} position {record['position_id']}"
        for start, end in record["unprotected"]:
            problem = _too_long(
                f"{where} unprotected", _t(start), _t(end) or now, round_trip, lives
            )
            if problem:
                breaks.append(problem)
        counts = [(_t(at), count) for at, count in record["stop_counts"]]
        closed = _t(record["closed_at"]) or now
        for index, (at, count) in enumerate(counts):
            if count > 2:
                breaks.append(f"{where} had {count} stops at {at:%H:%M:%S.%f}")
            if count >= 2:
                until = counts[index + 1][0] if index + 1 < len(counts) else closed
                problem = _too_long(f"{where} had {count} stops", at, until, round_trip, lives)
                if problem:
                    breaks.append(problem)
    return breaks


def full_quantity_breaks(state: dict[str, Any]) -> list[str]:
    """Right now: every open position has exactly one stop, for its full quantity."""
    breaks = []
    for position in state["positions"]:
        symbol, quantity = position["symbol"], Decimal(position["quantity"])
        stops = [o for o in state["orders"] if o["symbol"] == symbol and o["open"] and o["stop"]]
        if len(stops) != 1:
            breaks.append(f"{symbol}: {len(stops)} stops for a position of {quantity}")
            continue
        [stop] = stops
        full = stop["close_position"] or stop["type"] == "position_stop"
        if not full and Decimal(stop["quantity"]) != quantity:
            breaks.append(f"{symbol}: a stop for {stop['quantity']}, the position is {quantity}")
    return breaks


def entries(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every entry the bot sent: market orders that are not reduce-only."""
    return [
        o
        for o in state["orders"]
        if o["origin"] == "api" and o["type"] == "market" and not o["reduce_only"]
    ]


def double_entry_breaks(state: dict[str, Any]) -> list[str]:
    """No client id used for two entries, no operation that filled two entries."""
    breaks = []
    seen: dict[str, int] = {}
    filled: dict[str, int] = {}
    for order in entries(state):
        client_id = order["client_order_id"] or ""
        seen[client_id] = seen.get(client_id, 0) + 1
        operation = operation_of(client_id) or client_id
        if Decimal(order["filled"]) > 0:
            filled[operation] = filled.get(operation, 0) + 1
    breaks += [f"client id {c} used for {n} entries" for c, n in seen.items() if n > 1]
    breaks += [f"operation {op} filled {n} entries" for op, n in filled.items() if n > 1]
    return breaks


def _uncovered(
    start: datetime, end: datetime, covers: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    stretches, cursor = [], start
    for low, high in sorted(covers):
        if high <= cursor or low >= end:
            continue
        if low > cursor:
            stretches.append((cursor, low))
        cursor = max(cursor, high)
    if cursor < end:
        stretches.append((cursor, end))
    return stretches


def zombie_breaks(
    state: dict[str, Any], lives: Sequence[Life], *, zombie_interval: float, round_trip: float
) -> list[str]:
    """No reduce-only order or stop of ours open without a position on its symbol for more
    than one zombie interval plus one round trip."""
    now = _t(state["now"])
    assert now is not None
    positions: dict[str, list[tuple[datetime, datetime]]] = {}
    for record in state["position_records"]:
        opened, closed = _t(record["opened_at"]), _t(record["closed_at"]) or now
        assert opened is not None
        positions.setdefault(record["symbol"], []).append((opened, closed))
    breaks = []
    for order in state["orders"]:
        if order["origin"] != "api" or not (order["reduce_only"] or order["stop"]):
            continue
        born = _t(order["created_at"])
        assert born is not None
        gone = now if order["open"] else (_t(order["updated_at"]) or now)
        for low, high in _uncovered(born, gone, positions.get(order["symbol"], ())):
            problem = _too_long(
                f"{order['symbol']} order {order['client_order_id']} open without a position",
                low,
                high,
                zombie_interval + round_trip,
                lives,
            )
            if problem:
                breaks.append(problem)
    return breaks


def market_close_breaks(state: dict[str, Any]) -> list[str]:
    """No position closed at market by the bot. In a run without aged exits (minutes, not
    hours) and without a stop the venue truly refuses, nothing calls for it: such a close
    gives up a protected position (as after an "already done" answer taken for a failure).
    The refusals the venue gave on that symbol are named."""
    breaks = []
    for record in state["position_records"]:
        if record["close_reason"] != "api":
            continue
        codes = sorted(
            {
                f"{r['op']} {r['code']}"
                for r in state["refusals"]
                if r["symbol"] == record["symbol"]
                and record["opened_at"] <= r["at"] <= record["closed_at"]
            }
        )
        breaks.append(
            f"{record['symbol']} position {record['position_id']} closed at market by the bot "
            f"at {record['closed_at']} (venue refusals before: {', '.join(codes) or 'none'})"
        )
    return breaks


@attrs.frozen(kw_only=True)
class SyncPass:
    """One synchronizer pass that read the venue and the journal and completed (from the
    journal's `synchronization_started` / `synchronization_completed` events)."""

    started: datetime
    completed: datetime
    left: frozenset[str] = frozenset()  # symbols it found flat but could not journal closed


Busy = Mapping[str, Sequence[tuple[datetime, datetime | None]]]


def journal_breaks(
    state: dict[str, Any],
    journal: Sequence[Position],
    *,
    passes: Sequence[SyncPass],
    busy: Busy,
    stopping: datetime,
    lag: float,
    up_since: datetime | None = None,
) -> list[str]:
    """After the last runner stopped gracefully, its journal holds the exchange's positions:
    same symbols, sides and quantities, each ACTIVE.

    A position the exchange closed (a stop fired) may still be ACTIVE in the journal only
    while no synchronizer pass has looked since: no pass that started after the close and
    completed, with no operation in flight on the symbol during it (the synchronizer leaves a
    busy symbol to the next pass) - and the close came at most `lag` seconds before the stop
    was asked for (`stopping`: no pass starts after it), `lag` being one sync interval plus
    the longest pass plus a round trip; counted from `up_since` (the last runner's recovery
    done, its loops begun) for a close during its recovery, after its recovery's own sync
    pass. The next start's recovery closes it."""
    held = {p["symbol"]: p for p in state["positions"]}
    mine = {p.symbol: p for p in journal}
    closes: dict[str, datetime] = {}
    for r in state["position_records"]:
        if r["closed_at"] is not None:
            at = datetime.fromisoformat(r["closed_at"])
            closes[r["symbol"]] = max(at, closes.get(r["symbol"], at))
    breaks = []
    for symbol in sorted(held.keys() | mine.keys()):
        venue, journaled = held.get(symbol), mine.get(symbol)
        if venue is None and journaled is not None:
            problem = _missed_close(
                symbol, closes.get(symbol), passes, busy, stopping, lag, up_since
            )
            if problem:
                breaks.append(
                    f"{symbol}: the journal has {journaled.state} {journaled.quantity}, "
                    f"the exchange is flat ({problem})"
                )
        elif venue is not None and journaled is None:
            breaks.append(f"{symbol}: the exchange holds {venue['quantity']}, the journal nothing")
        elif (
            venue is not None
            and journaled is not None
            and (
                journaled.state is not PositionState.ACTIVE
                or journaled.side.value != venue["side"]
                or journaled.quantity != Decimal(venue["quantity"])
            )
        ):
            breaks.append(
                f"{symbol}: the journal has {journaled.state} {journaled.side} "
                f"{journaled.quantity}, the exchange {venue['side']} {venue['quantity']}"
            )
    return breaks


def _missed_close(
    symbol: str,
    closed: datetime | None,
    passes: Sequence[SyncPass],
    busy: Busy,
    stopping: datetime,
    lag: float,
    up_since: datetime | None = None,
) -> str | None:
    """Why a position the exchange closed at `closed` should be closed in the journal by
    now; None when no pass could have seen it yet."""
    if closed is None:
        return "it never held it"
    for sync in passes:
        if sync.started < closed or symbol in sync.left:
            continue  # before the close, or its close was not confirmed (the venue unread)
        overlapped = any(
            began <= sync.completed and (ended is None or ended >= sync.started)
            for began, ended in busy.get(symbol, ())
        )
        if not overlapped:
            return (
                f"closed there at {closed:%H:%M:%S.%f}; the sync pass from "
                f"{sync.started:%H:%M:%S.%f} to {sync.completed:%H:%M:%S.%f} left it open"
            )
    looking = closed if up_since is None else max(closed, up_since)
    if looking < stopping - timedelta(seconds=lag):
        return (
            f"closed there at {closed:%H:%M:%S.%f}, over {lag:.1f} s before the stop at "
            f"{stopping:%H:%M:%S.%f}, and no sync pass looked since"
        )
    return None
