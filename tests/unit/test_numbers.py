from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.domain.errors import DomainError, InvalidNumber
from tradecore.domain.numbers import non_negative, percent, positive, to_decimal


def test_decimals_ints_and_numeric_strings_become_exact_decimals():
    assert to_decimal(Decimal("0.0000001"), name="price") == Decimal("0.0000001")
    assert to_decimal(42, name="quantity") == Decimal(42)
    assert to_decimal(" 97123.45 ", name="price") == Decimal("97123.45")
    assert to_decimal("1e-7", name="price") == Decimal("0.0000001")


def test_a_float_is_read_through_its_shortest_repr_not_its_binary_value():
    assert to_decimal(0.1, name="price") == Decimal("0.1")
    assert to_decimal(0.1, name="price") != Decimal(0.1)  # noqa: RUF032 (the binary value)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("NaN"),
        Decimal("sNaN"),
        "nan",
        float("nan"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "inf",
        "-inf",
        float("inf"),
    ],
)
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(InvalidNumber, match="price"):
        to_decimal(value, name="price")


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(value):
    with pytest.raises(InvalidNumber, match="boolean"):
        to_decimal(value, name="quantity")


@pytest.mark.parametrize("value", ["", "abc", "1,5", "12.3.4", "0x10", "1 000"])
def test_garbage_strings_are_refused_with_the_field_name(value):
    with pytest.raises(InvalidNumber, match="quantity"):
        to_decimal(value, name="quantity")


@pytest.mark.parametrize("value", [None, [1], {"price": 1}, b"1", object()])
def test_other_types_are_refused(value):
    with pytest.raises(InvalidNumber, match="must be a number"):
        to_decimal(value, name="price")


@pytest.mark.parametrize("value", [0, "0", Decimal("-0"), -1, "-0.0001", Decimal("-5")])
def test_positive_refuses_zero_and_negatives(value):
    with pytest.raises(InvalidNumber, match="greater than 0"):
        positive(value, name="tick_size")


@pytest.mark.parametrize("value", [-1, "-0.0001", Decimal("-5")])
def test_non_negative_refuses_negatives(value):
    with pytest.raises(InvalidNumber, match="negative"):
        non_negative(value, name="min_notional")


def test_non_negative_accepts_zero():
    assert non_negative("0", name="min_notional") == 0


def test_invalid_numbers_are_domain_errors_and_value_errors():
    with pytest.raises(DomainError):
        positive("nan", name="price")
    with pytest.raises(ValueError):
        positive("nan", name="price")


def test_percent_turns_percent_into_a_fraction():
    assert percent(Decimal("1.5")) == Decimal("0.015")
    assert percent(Decimal(100)) == 1


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_a_finite_decimal_survives_a_trip_through_its_string(value):
    assert to_decimal(str(value), name="price") == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_converts_to_the_decimal_that_prints_like_it(value):
    result = to_decimal(value, name="price")
    assert float(result) == value
    assert result == Decimal(repr(value))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_positive_accepts_exactly_the_numbers_above_zero(value):
    if value > 0:
        assert positive(value, name="price") == value
    else:
        with pytest.raises(InvalidNumber):
            positive(value, name="price")
