"""Trailing stop (SPEC §4) as a pure transition. State and parameters are defined here;
the transition is implemented below them."""

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import attrs

from tradecore.domain.errors import InvalidNumber
from tradecore.domain.model import Side, Venue
from tradecore.domain.numbers import HUNDRED, ONE, ZERO, percent, positive
from tradecore.domain.precision import round_price
from tradecore.domain.stops import away_from_mark, stop_at_distance, would_trigger


class TrailingPhase(StrEnum):
    INACTIVE = "inactive"
    WAITING = "waiting"  # breakeven reached, waiting for activation
    ACTIVE = "active"
    TRIGGERED = "triggered"


@attrs.frozen(kw_only=True)
class TrailingParams:
    activation_percent: Decimal = Decimal("1.5")
    callback_percent: Decimal = Decimal("0.5")
    breakeven_percent: Decimal | None = None
    min_position_age_minutes: int | None = None
    rate_limit_seconds: int = 60
    min_improvement_percent: Decimal = Decimal("0.1")
    emergency_improvement_percent: Decimal = Decimal("1.0")


@attrs.frozen(kw_only=True)
class TrailingState:
    """What a position's trailing stop knows; persisted on every change, restored on start."""

    position_id: str
    venue: Venue
    symbol: str
    side: Side
    entry_price: Decimal
    quantity: Decimal
    opened_at: datetime
    phase: TrailingPhase = TrailingPhase.INACTIVE
    best_price: Decimal | None = None
    stop_price: Decimal | None = None
    activated_at: datetime | None = None
    update_count: int = 0
    last_update_at: datetime | None = None  # when the last move left for the venue
    # The move before that one: the rate limit counts from it should the last one never
    # reach the venue (a crash cut it off: `stop_not_moved` on restore).
    previous_update_at: datetime | None = None
    # Derived thresholds, so that a tick that changes nothing compares Decimals and
    # datetimes and allocates nothing. `prime` rebuilds them (after a restore that lost
    # them, or a change of parameters).
    activation_price: Decimal | None = None
    breakeven_price: Decimal | None = None  # None once reached, or when breakeven is off
    age_activation_at: datetime | None = None
    # A worthwhile move held back by the rate limit is due at this time.
    next_update_at: datetime | None = None
    # The phase the stop was triggered in, so `resume_trailing` can restore it, and when:
    # a read of the venue after that moment that still shows the position says the venue's
    # stop did not fire.
    triggered_from: TrailingPhase | None = None
    triggered_at: datetime | None = None
    # The time of the mark that last changed the state: the state holds every mark up to
    # then, so a restart asks the venue for the marks after it (`catch_up`).
    marks_until: datetime | None = None
    # When the entry the thresholds are measured from took effect: a person added to the
    # position (`follow_position`); None, its opening. Marks before it are no profit.
    entry_at: datetime | None = None


class StopMoveReason(StrEnum):
    BREAKEVEN = "breakeven"
    ACTIVATION = "activation"
    TRAIL = "trail"
    OVERRIDE = "override"  # improved by >= emergency_improvement_percent inside the rate limit


class ActivationCause(StrEnum):
    PROFIT = "profit"
    AGE = "age"


@attrs.frozen(kw_only=True)
class MoveStop:
    """Command: move the position's stop to `new_stop` (create the new one, then cancel the old)."""

    position_id: str
    new_stop: Decimal
    previous_stop: Decimal | None
    reason: StopMoveReason
    # The last move before this one, for the rate limit should this one never reach the venue
    # (bookkeeping: two commands that move the same stop the same way are equal).
    previous_update_at: datetime | None = attrs.field(default=None, eq=False)


@attrs.frozen(kw_only=True)
class TrailingActivated:
    """Note (`trailing_stop_activated`): the trailing stop owns the stop from now on."""

    position_id: str
    mark: Decimal
    cause: ActivationCause
    at: datetime


@attrs.frozen(kw_only=True)
class BreakevenReached:
    """Note (`trailing_stop_breakeven`): profit reached `breakeven_percent`."""

    position_id: str
    mark: Decimal
    at: datetime


@attrs.frozen(kw_only=True)
class StopTriggered:
    """Note: the mark crossed the stop; the venue's stop should close the position now."""

    position_id: str
    stop_price: Decimal
    mark: Decimal
    at: datetime


@attrs.frozen(kw_only=True)
class TrailingEnded:
    """Note (`trailing_stop_removed`): the position closed, its trailing stop ends with it."""

    position_id: str
    phase: TrailingPhase
    stop_price: Decimal | None
    update_count: int
    reason: str


TrailingCommand = MoveStop | TrailingActivated | BreakevenReached | StopTriggered
Transition = tuple[TrailingState, tuple[TrailingCommand, ...]]

EMPTY: tuple[TrailingCommand, ...] = ()
_ACTIVE = TrailingPhase.ACTIVE
_TRIGGERED = TrailingPhase.TRIGGERED
_LONG = Side.LONG


def check_params(params: TrailingParams) -> None:
    """Refuse parameters under which the transition would misbehave, naming the field."""
    for name in ("activation_percent", "callback_percent", "min_improvement_percent"):
        positive(getattr(params, name), name=name)
    positive(params.emergency_improvement_percent, name="emergency_improvement_percent")
    if params.callback_percent >= HUNDRED:
        raise InvalidNumber(f"callback_percent must be below 100, got {params.callback_percent}")
    if params.breakeven_percent is not None:
        positive(params.breakeven_percent, name="breakeven_percent")
    if params.min_position_age_minutes is not None and params.min_position_age_minutes < 0:
        raise InvalidNumber("min_position_age_minutes must not be negative")
    if params.rate_limit_seconds < 0:
        raise InvalidNumber("rate_limit_seconds must not be negative")


def start_trailing(
    *,
    position_id: str,
    venue: Venue,
    symbol: str,
    side: Side,
    entry_price: object,
    quantity: object,
    opened_at: datetime,
    stop_price: object | None,
    params: TrailingParams,
    entry_at: datetime | None = None,
) -> TrailingState:
    """The trailing state of a newly protected position: INACTIVE, watching `stop_price`;
    `entry_at` when its entry may be another than at its opening (`TrailingState.entry_at`)."""
    check_params(params)
    state = TrailingState(
        position_id=position_id,
        venue=venue,
        symbol=symbol,
        side=side,
        entry_price=positive(entry_price, name="entry_price"),
        quantity=positive(quantity, name="quantity"),
        opened_at=opened_at,
        stop_price=None if stop_price is None else positive(stop_price, name="stop_price"),
        entry_at=entry_at,
    )
    return prime(state, params)


def prime(state: TrailingState, params: TrailingParams) -> TrailingState:
    """`state` with its derived thresholds computed from `params` (idempotent)."""
    check_params(params)
    sign = state.side.sign
    entry = state.entry_price
    breakeven = None
    if params.breakeven_percent is not None and state.phase is TrailingPhase.INACTIVE:
        breakeven = entry * (ONE + sign * percent(params.breakeven_percent))
    age_at = None
    if params.min_position_age_minutes is not None:
        age_at = state.opened_at + timedelta(minutes=params.min_position_age_minutes)
    return attrs.evolve(
        state,
        activation_price=entry * (ONE + sign * percent(params.activation_percent)),
        breakeven_price=breakeven,
        age_activation_at=age_at,
    )


def resume_trailing(state: TrailingState) -> TrailingState:
    """Back to the phase the stop was triggered in, once the venue shows the position still open.

    The domain cannot know whether the venue's stop fired; the app looks, then either ends
    the trailing stop or resumes it.
    """
    if state.phase is not _TRIGGERED:
        return state
    return attrs.evolve(
        state,
        phase=state.triggered_from or TrailingPhase.INACTIVE,
        triggered_from=None,
        triggered_at=None,
    )


def stop_not_moved(
    state: TrailingState, actual_stop: Decimal | None, *, last_update_at: datetime | None
) -> TrailingState:
    """The stop the state wants never reached the venue (refused, or a crash cut the move off):
    the state takes back the stop that stands, and the move is due again on the next mark —
    not on the next best price, which may never come (issue 10, story 5).

    `last_update_at` is the last move that did reach the venue, for the rate limit.
    """
    resumed = resume_trailing(state)
    return attrs.evolve(
        resumed,
        stop_price=actual_stop,
        last_update_at=last_update_at,
        # due at once: any later mark re-judges the move (the attempt's own time is past)
        next_update_at=state.last_update_at or state.opened_at,
    )


def follow_position(
    state: TrailingState,
    entry_price: Decimal,
    quantity: Decimal,
    params: TrailingParams,
    *,
    at: datetime,
) -> TrailingState:
    """The position changed on the venue (a person added to it or closed part of it): its
    entry and quantity are the venue's, and so are the thresholds measured from the entry
    — a new entry from `at` on: a restart's catch-up never judges the marks before it
    against the new one (review 15). A partial close keeps the entry and the marks the
    state has not judged yet (review 15b)."""
    entry = positive(entry_price, name="entry_price")
    followed = attrs.evolve(
        state,
        entry_price=entry,
        quantity=positive(quantity, name="quantity"),
        entry_at=state.entry_at if entry == state.entry_price else at,
    )
    return prime(followed, params)


def end_trailing(state: TrailingState, reason: str) -> TrailingEnded:
    """The note that ends a position's trailing stop when the position closes for any reason."""
    return TrailingEnded(
        position_id=state.position_id,
        phase=state.phase,
        stop_price=state.stop_price,
        update_count=state.update_count,
        reason=reason,
    )


def on_mark(
    state: TrailingState,
    mark: Decimal,
    now: datetime,
    params: TrailingParams,
    tick_size: Decimal,
) -> Transition:
    """SPEC §4 for one mark price: the new state and the commands for the app to carry out.

    When nothing changes it returns `state` itself and `EMPTY`. The stop only moves in the
    position's favour, and a new stop is always strictly on the safe side of `mark`.
    """
    if mark.__class__ is not Decimal or not mark.is_finite() or mark <= ZERO:
        mark = positive(mark, name="mark")
    step = _long if state.side is _LONG else _short
    new, commands = step(state, mark, now, params, tick_size)
    if new is state:
        return new, commands
    # One mark can satisfy two rules (breakeven, then activation by age): settle both now,
    # so the same mark again never changes anything.
    chained = False
    for _ in range(_MAX_RULES):
        again, more = step(new, mark, now, params, tick_size)
        if again is new:
            break
        new, commands, chained = again, (*commands, *more), True
    if chained:
        new, commands = _one_move(state, new, commands)
    return attrs.evolve(new, marks_until=now), commands


def catch_up(
    state: TrailingState,
    best: Decimal,
    mark: Decimal,
    now: datetime,
    params: TrailingParams,
    tick_size: Decimal,
) -> Transition:
    """The marks the state never judged, taken in: those after `state.marks_until` — the bot
    was down, or a crash took the change they made before it reached the journal (simulator,
    binance seed 2508: an activation lost, and the marks never came back to it). The venue
    keeps them (`Exchange.fetch_mark_candles`): `best` is the most favourable (the highest
    for a long, the lowest for a short), `mark` the mark now.

    A best that reaches the activation price activates the trailing stop, one beyond the
    best so far is the new best; the stop goes where that wants it on the safe side of
    `mark`, as any move (never one that would trigger at once, never looser, within the
    rate limit). A best the mark has since fallen back from by more than the callback is
    trailed from the mark, and the state keeps the mark as its best: a best it kept that the
    stop is not trailed from would hold every later rise below it back (review 15).
    Breakeven moves the stop to the entry — unless the mark is back beyond the entry: the
    ticks judge breakeven again then, as if the restart had seen nothing (review 15). A
    TRIGGERED state waits for the venue."""
    best = positive(best, name="best")
    mark = positive(mark, name="mark")
    if state.phase is _TRIGGERED:
        return state, EMPTY
    side = state.side
    sign = side.sign
    primed = state if state.activation_price is not None else prime(state, params)
    held = mark if would_trigger(side, _trail(side, best, params, tick_size), mark) else best
    notes: tuple[TrailingCommand, ...] = ()
    changes: dict[str, Any]
    if state.phase is _ACTIVE:
        if state.best_price is not None and (held - state.best_price) * sign <= ZERO:
            return state, EMPTY
        changes = {"best_price": held}
    elif primed.activation_price is not None and (best - primed.activation_price) * sign >= ZERO:
        changes = {
            "phase": _ACTIVE,
            "activated_at": now,
            "best_price": held,
            "breakeven_price": None,
        }
        cause = ActivationCause.PROFIT
        notes = (TrailingActivated(position_id=state.position_id, mark=best, cause=cause, at=now),)
    elif primed.breakeven_price is not None and (best - primed.breakeven_price) * sign >= ZERO:
        if _target(primed, TrailingPhase.WAITING, None, mark, params, tick_size) is None:
            return state, EMPTY
        changes = {"phase": TrailingPhase.WAITING, "breakeven_price": None}
        notes = (BreakevenReached(position_id=state.position_id, mark=best, at=now),)
    else:
        return state, EMPTY
    moved, commands = _move(primed, mark, now, params, tick_size, changes)
    return attrs.evolve(moved, marks_until=now), (*notes, *commands)


def _one_move(
    state: TrailingState, new: TrailingState, commands: tuple[TrailingCommand, ...]
) -> Transition:
    """A chain's moves as the venue sees them: one move, from the stop that stood before the
    mark to the chain's last level, counted once. Intermediate levels were never placed, so
    no command may name one as the stop it replaces."""
    moved = [command for command in commands if isinstance(command, MoveStop)]
    if len(moved) < 2:
        return new, commands
    last = moved[-1]
    one = attrs.evolve(
        last, previous_stop=state.stop_price, previous_update_at=state.last_update_at
    )
    rest = tuple(command for command in commands if not isinstance(command, MoveStop))
    counted = attrs.evolve(
        new, update_count=state.update_count + 1, previous_update_at=state.last_update_at
    )
    return counted, (*rest, one)


_MAX_RULES = 3  # breakeven -> activation -> a held-back move: the longest chain


# The two hot paths mirror each other; they only compare, so an unchanged tick is cheap.


def _long(
    state: TrailingState, mark: Decimal, now: datetime, params: TrailingParams, tick: Decimal
) -> Transition:
    stop = state.stop_price
    phase = state.phase
    if stop is not None and mark <= stop:
        return (state, EMPTY) if phase is _TRIGGERED else _trigger(state, mark, now)
    if phase is _ACTIVE:
        best = state.best_price
        if best is None or mark > best:
            return _new_best(state, mark, now, params, tick)
    elif phase is _TRIGGERED:
        return state, EMPTY
    else:
        activation = state.activation_price
        if activation is None:
            return _long(prime(state, params), mark, now, params, tick)
        if mark >= activation:
            return _activate(state, mark, now, params, tick, ActivationCause.PROFIT)
        breakeven = state.breakeven_price
        if breakeven is not None and mark >= breakeven:
            return _breakeven(state, mark, now, params, tick)
        age_at = state.age_activation_at
        if age_at is not None and now >= age_at and mark > state.entry_price:
            return _activate(state, mark, now, params, tick, ActivationCause.AGE)
    due = state.next_update_at
    if due is not None and now >= due:
        return _move(state, mark, now, params, tick, {})
    return state, EMPTY


def _short(
    state: TrailingState, mark: Decimal, now: datetime, params: TrailingParams, tick: Decimal
) -> Transition:
    stop = state.stop_price
    phase = state.phase
    if stop is not None and mark >= stop:
        return (state, EMPTY) if phase is _TRIGGERED else _trigger(state, mark, now)
    if phase is _ACTIVE:
        best = state.best_price
        if best is None or mark < best:
            return _new_best(state, mark, now, params, tick)
    elif phase is _TRIGGERED:
        return state, EMPTY
    else:
        activation = state.activation_price
        if activation is None:
            return _short(prime(state, params), mark, now, params, tick)
        if mark <= activation:
            return _activate(state, mark, now, params, tick, ActivationCause.PROFIT)
        breakeven = state.breakeven_price
        if breakeven is not None and mark <= breakeven:
            return _breakeven(state, mark, now, params, tick)
        age_at = state.age_activation_at
        if age_at is not None and now >= age_at and mark < state.entry_price:
            return _activate(state, mark, now, params, tick, ActivationCause.AGE)
    due = state.next_update_at
    if due is not None and now >= due:
        return _move(state, mark, now, params, tick, {})
    return state, EMPTY


# The slow paths: something changed, so a new state (and maybe commands) is built.


def _trigger(state: TrailingState, mark: Decimal, now: datetime) -> Transition:
    assert state.stop_price is not None
    note = StopTriggered(
        position_id=state.position_id, stop_price=state.stop_price, mark=mark, at=now
    )
    triggered = attrs.evolve(
        state, phase=_TRIGGERED, triggered_from=state.phase, next_update_at=None, triggered_at=now
    )
    return triggered, (note,)


def _activate(
    state: TrailingState,
    mark: Decimal,
    now: datetime,
    params: TrailingParams,
    tick: Decimal,
    cause: ActivationCause,
) -> Transition:
    note = TrailingActivated(position_id=state.position_id, mark=mark, cause=cause, at=now)
    changes = {
        "phase": _ACTIVE,
        "activated_at": now,
        "best_price": mark,
        "breakeven_price": None,
    }
    moved, commands = _move(state, mark, now, params, tick, changes)
    return moved, (note, *commands)


def _breakeven(
    state: TrailingState, mark: Decimal, now: datetime, params: TrailingParams, tick: Decimal
) -> Transition:
    note = BreakevenReached(position_id=state.position_id, mark=mark, at=now)
    changes = {"phase": TrailingPhase.WAITING, "breakeven_price": None}
    moved, commands = _move(state, mark, now, params, tick, changes)
    return moved, (note, *commands)


def _new_best(
    state: TrailingState, mark: Decimal, now: datetime, params: TrailingParams, tick: Decimal
) -> Transition:
    return _move(state, mark, now, params, tick, {"best_price": mark})


def _move(
    state: TrailingState,
    mark: Decimal,
    now: datetime,
    params: TrailingParams,
    tick: Decimal,
    changes: dict[str, Any],
) -> Transition:
    """Apply `changes`, then move the stop to where the new phase wants it, if that is allowed.

    A move must improve the stop by at least `min_improvement_percent`; inside the rate
    limit it waits (`next_update_at`) unless it improves by `emergency_improvement_percent`.
    """
    phase = changes.get("phase", state.phase)
    best = changes.get("best_price", state.best_price)
    target = _target(state, phase, best, mark, params, tick)
    previous = state.stop_price
    gain = _gain(state.side, previous, target)
    if target is None and phase is TrailingPhase.WAITING:
        # The stop at the entry is owed but the mark is back beyond the entry: it stays due
        # for a later mark, never dropped (review 15b: a held-back breakeven met by such a
        # mark left the stop at the initial distance until activation).
        wanted = round_price(state.entry_price, tick, away_from_mark(state.side))
        if _gain(state.side, previous, wanted) >= params.min_improvement_percent:
            owed = state.next_update_at or now
            if not changes and owed == state.next_update_at:
                return state, EMPTY
            return attrs.evolve(state, next_update_at=owed, **changes), EMPTY
    if target is None or gain < params.min_improvement_percent:
        return attrs.evolve(state, next_update_at=None, **changes), EMPTY
    last = state.last_update_at
    due = None if last is None else last + timedelta(seconds=params.rate_limit_seconds)
    if due is None or now >= due:
        reason = _reason(state.phase, phase)
    elif gain >= params.emergency_improvement_percent:
        reason = StopMoveReason.OVERRIDE
    else:
        return attrs.evolve(state, next_update_at=due, **changes), EMPTY
    moved = attrs.evolve(
        state,
        stop_price=target,
        update_count=state.update_count + 1,
        last_update_at=now,
        previous_update_at=last,
        next_update_at=None,
        **changes,
    )
    command = MoveStop(
        position_id=state.position_id,
        new_stop=target,
        previous_stop=previous,
        reason=reason,
        previous_update_at=last,
    )
    return moved, (command,)


def _target(
    state: TrailingState,
    phase: TrailingPhase,
    best: Decimal | None,
    mark: Decimal,
    params: TrailingParams,
    tick: Decimal,
) -> Decimal | None:
    """Where the stop belongs in `phase`, strictly on the safe side of `mark`, or None."""
    side = state.side
    if phase is _ACTIVE and best is not None:
        target = _trail(side, best, params, tick)
        if would_trigger(side, target, mark):
            # The mark already fell back more than the callback from the best price: trail
            # from the mark instead, so the new stop is valid on the venue.
            target = _trail(side, mark, params, tick)
    elif phase is TrailingPhase.WAITING:
        target = round_price(state.entry_price, tick, away_from_mark(side))
    else:
        return None
    return None if would_trigger(side, target, mark) else target


def _trail(side: Side, reference: Decimal, params: TrailingParams, tick: Decimal) -> Decimal:
    return round_price(
        stop_at_distance(side, reference, params.callback_percent), tick, away_from_mark(side)
    )


def _gain(side: Side, previous: Decimal | None, target: Decimal | None) -> Decimal:
    """How much `target` improves on `previous`, in percent of `previous` (negative: worse)."""
    if target is None:
        return -HUNDRED
    if previous is None:
        return HUNDRED
    return (target - previous) * side.sign / previous * HUNDRED


def _reason(before: TrailingPhase, after: TrailingPhase) -> StopMoveReason:
    if after is TrailingPhase.WAITING:
        return StopMoveReason.BREAKEVEN
    if before is not _ACTIVE:
        return StopMoveReason.ACTIVATION
    return StopMoveReason.TRAIL
