import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.domain.errors import DomainError, IllegalTransition
from tradecore.domain.model import Side, Venue
from tradecore.domain.orders import (
    OrderRole,
    attempt_of,
    client_order_id,
    operation_of,
    role_of,
)
from tradecore.domain.positions import (
    TRANSITIONS,
    Operation,
    OperationKind,
    Position,
    PositionState,
    StopOwner,
    check_transition,
)

T0 = datetime(2026, 3, 1, 9, 5, tzinfo=UTC)
S = PositionState


def position(state: PositionState = S.PENDING_ENTRY) -> Position:
    return Position(
        id="op1",
        venue=Venue.BINANCE,
        symbol="BTCUSDT",
        side=Side.LONG,
        state=state,
        requested_quantity=Decimal("0.002"),
        created_at=T0,
    )


LEGAL = [(source, target) for source, targets in TRANSITIONS.items() for target in targets]
ILLEGAL = [
    (source, target)
    for source in PositionState
    for target in PositionState
    if target not in TRANSITIONS[source]
]


def test_the_lifecycle_is_defined_for_every_state():
    assert set(TRANSITIONS) == set(PositionState)


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=lambda s: s.value)
def test_every_legal_transition_moves_the_position_and_bumps_its_version(source, target):
    before = position(source)
    after = before.advance(target)
    assert after.state is target
    assert after.version == before.version + 1
    assert before.state is source  # values are immutable: the old one is untouched


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: s.value)
def test_every_illegal_transition_is_refused_with_a_message_naming_both_states(source, target):
    with pytest.raises(IllegalTransition) as refused:
        position(source).advance(target)
    message = str(refused.value)
    assert source.value in message and target.value in message
    assert "allowed" in message


def test_the_happy_path_of_an_open_reaches_active_then_closed():
    p = position()
    for state in (S.ENTRY_PLACED, S.PENDING_SL, S.ACTIVE, S.CLOSING, S.CLOSED):
        p = p.advance(state)
    assert p.state is S.CLOSED
    assert p.version == 5


def test_an_entry_that_never_filled_fails_and_a_fill_without_a_stop_is_rolled_back():
    assert position().advance(S.FAILED).state is S.FAILED
    assert position(S.ENTRY_PLACED).advance(S.ROLLED_BACK).state is S.ROLLED_BACK


def test_a_position_cannot_become_active_before_its_stop_is_placed():
    with pytest.raises(IllegalTransition, match="pending_sl"):
        position(S.ENTRY_PLACED).advance(S.ACTIVE)


def test_a_closing_position_whose_exit_failed_returns_to_active():
    assert position(S.CLOSING).advance(S.ACTIVE).state is S.ACTIVE


@pytest.mark.parametrize("terminal", [S.CLOSED, S.FAILED, S.ROLLED_BACK])
def test_terminal_states_are_final(terminal):
    assert terminal.is_terminal
    assert not TRANSITIONS[terminal]
    with pytest.raises(IllegalTransition, match="none"):
        check_transition(terminal, S.ACTIVE)


def test_opening_states_are_exactly_those_before_the_stop_is_in_place():
    opening = {s for s in PositionState if s.is_opening}
    assert opening == {S.PENDING_ENTRY, S.ENTRY_PLACED, S.PENDING_SL}


def test_the_venue_may_hold_a_position_from_the_entry_until_it_is_closed():
    on_venue = {s for s in PositionState if s.is_open_on_venue}
    assert on_venue == {S.ENTRY_PLACED, S.PENDING_SL, S.ACTIVE, S.CLOSING}


def test_advance_records_the_fill_together_with_the_new_state():
    p = position(S.ENTRY_PLACED).advance(
        S.PENDING_SL, quantity=Decimal("0.002"), entry_price=Decimal("64000.1")
    )
    assert (p.quantity, p.entry_price) == (Decimal("0.002"), Decimal("64000.1"))


def test_the_stop_records_its_owner():
    p = position(S.ACTIVE).with_stop(
        price=Decimal("62080"), order_id="123", owner=StopOwner.TRAILING
    )
    assert (p.stop_price, p.stop_order_id, p.stop_owner) == (
        Decimal("62080"),
        "123",
        StopOwner.TRAILING,
    )
    assert p.state is S.ACTIVE


def test_the_four_stop_owners_are_initial_trailing_protection_and_aged():
    assert {o.value for o in StopOwner} == {"initial", "trailing", "protection", "aged"}


def test_an_operation_is_in_flight_until_it_is_finished():
    op = Operation(
        id="op1",
        kind=OperationKind.OPEN,
        venue=Venue.BYBIT,
        symbol="ETHUSDT",
        position_id="op1",
        started_at=T0,
    )
    assert op.in_flight
    done = Operation(
        id="op1",
        kind=OperationKind.OPEN,
        venue=Venue.BYBIT,
        symbol="ETHUSDT",
        position_id="op1",
        started_at=T0,
        finished_at=T0,
        outcome="active",
    )
    assert not done.in_flight


# ------------------------------------------------------------------------------ client ids

VALID_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
ROLES = [OrderRole.ENTRY, OrderRole.STOP, OrderRole.EXIT]


def test_the_same_operation_role_and_attempt_always_give_the_same_client_id():
    assert client_order_id("op1", OrderRole.STOP, 2) == client_order_id("op1", OrderRole.STOP, 2)


def test_roles_and_attempts_give_different_client_ids():
    ids = {client_order_id("op1", role, attempt) for role in ROLES for attempt in range(3)}
    assert len(ids) == 9


def test_a_client_id_is_valid_on_both_venues_and_decodes_back():
    cid = client_order_id("a1b2c3", OrderRole.EXIT, 1)
    assert VALID_CLIENT_ID.match(cid)
    assert role_of(cid) is OrderRole.EXIT
    assert operation_of(cid) == "a1b2c3"
    assert attempt_of(cid) == 1


def test_a_thirty_character_operation_id_still_fits_in_thirty_six():
    op = "x" * 30
    cid = client_order_id(op, OrderRole.ENTRY, 9)
    assert len(cid) == 36
    assert operation_of(cid) == op


def test_a_full_uuid_is_too_long_for_an_operation_id_and_is_refused_with_advice():
    with pytest.raises(DomainError, match="shorter operation id"):
        client_order_id("9f1c2e4a7b3d4c5e8f9a0b1c2d3e4f5a", OrderRole.STOP)


@pytest.mark.parametrize("bad", ["op 1", "op/1", "ö"])
def test_characters_the_venues_refuse_are_refused(bad):
    with pytest.raises(DomainError):
        client_order_id(bad, OrderRole.ENTRY)


def test_foreign_orders_are_never_mistaken_for_tradecores():
    for cid in (None, "", "web_12345", "tc", "tc-", "tcx-op1-e0", "tc-op1-q0", "TC-op1-e0"):
        assert role_of(cid) is OrderRole.FOREIGN
        assert operation_of(cid) is None
        assert attempt_of(cid) is None


def test_tradecore_places_no_orders_of_the_foreign_role_and_no_negative_attempts():
    with pytest.raises(DomainError):
        client_order_id("op1", OrderRole.FOREIGN)
    with pytest.raises(DomainError):
        client_order_id("op1", OrderRole.ENTRY, -1)


@settings(max_examples=300)
@given(
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=30
    ),
    st.sampled_from(ROLES),
    st.integers(min_value=0, max_value=9),
)
def test_every_client_id_is_short_valid_and_decodes_to_its_role_and_operation(op, role, attempt):
    cid = client_order_id(op, role, attempt)
    assert len(cid) <= 36
    assert VALID_CLIENT_ID.match(cid)
    assert role_of(cid) is role
    assert operation_of(cid) == op
    assert attempt_of(cid) == attempt
