"""The JSON boundary keeps money exact and survives text PostgreSQL would refuse."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.adapters.serialization import JSON, dumps
from tradecore.domain.events import Event, EventType


@settings(max_examples=200)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_finite_decimal_survives_json_exactly(value: Decimal) -> None:
    text = dumps({"v": value})
    back = JSON.structure(json.loads(text)["v"], Decimal)
    assert back == value
    assert "E" not in text  # positional, as an operator reads it


def test_an_event_round_trips_through_a_spool_line() -> None:
    event = Event(
        id=uuid.uuid4(),
        type=EventType.STOP_LOSS_PLACED,
        created_at=datetime(2026, 11, 21, 9, 0, 0, 123456, tzinfo=UTC),
        data={"stop": Decimal("0.00000001234"), "qty": Decimal("123456789.123456789")},
        position_id="p1",
    )
    back = JSON.structure(json.loads(dumps(event)), Event)
    # Decimal inside free-form data comes back as its exact string, never as a float.
    assert back == attrs.evolve(event, data={"stop": "0.00000001234", "qty": "123456789.123456789"})


def test_a_float_is_refused_where_a_decimal_is_expected() -> None:
    with pytest.raises(ValueError, match="string"):
        JSON.structure(0.1, Decimal)


def test_nul_characters_are_replaced_so_postgresql_accepts_the_json() -> None:
    text = dumps({"reason": "bad\x00byte"})
    assert "\\u0000" not in text
    assert json.loads(text)["reason"] == "bad\ufffdbyte"
