"""`Venue` is an open set of names: the known ones behave as before, a venue module adds its own."""

import pickle
import string

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.adapters.serialization import JSON
from tradecore.domain.errors import DomainError
from tradecore.domain.model import Venue

KNOWN = ("binance", "bybit")
names = st.text(alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=12)


@attrs.frozen
class Holder:
    venue: Venue


@given(st.sampled_from(KNOWN), st.sampled_from(["", " ", "\t"]), st.booleans())
def test_a_known_name_parses_in_any_case_and_round_trips(name: str, pad: str, upper: bool) -> None:
    venue = Venue.parse(pad + (name.upper() if upper else name) + pad)
    assert venue is Venue(name) and venue == name and venue.value == name and str(venue) == name
    assert pickle.loads(pickle.dumps(venue)) is venue
    assert JSON.unstructure(Holder(venue)) == {"venue": name}
    assert JSON.structure({"venue": name}, Holder).venue is venue
    assert hash(venue) == hash(name) and {venue: 1}[name] == 1


@given(names.filter(lambda n: n not in {v.value for v in Venue}))
def test_an_unknown_name_is_refused_naming_the_known_venues(name: str) -> None:
    with pytest.raises(ValueError, match="not a known venue"):
        Venue(name)
    with pytest.raises(DomainError) as refused:
        Venue.parse(name)
    for known in KNOWN:
        assert known in str(refused.value)
    assert name not in [v.value for v in Venue]


def test_the_known_venues_keep_their_names_order_and_members() -> None:
    assert [v.value for v in Venue][:2] == list(KNOWN)
    assert Venue.BINANCE is Venue("binance") and Venue.BYBIT is Venue("bybit")
    assert repr(Venue.BYBIT) == "<Venue.BYBIT: 'bybit'>" and f"{Venue.BINANCE}" == "binance"
    assert "bybit" in Venue and "kraken" not in Venue


def test_registering_a_venue_makes_it_known_once() -> None:
    toy = Venue.register("toy")
    assert Venue.register("toy") is toy is Venue("toy") is Venue.parse(" TOY ")
    assert [v.value for v in Venue].count("toy") == 1
    assert pickle.loads(pickle.dumps(toy)) is toy


@pytest.mark.parametrize("bad", ["", "two words", "UPPER", " toy", "-x", 3])
def test_a_venue_name_is_lower_case_text(bad: object) -> None:
    with pytest.raises(ValueError):
        Venue.register(bad)  # type: ignore[arg-type]


def test_the_enum_lookups_a_notebook_used_still_work() -> None:
    # `Venue` was a StrEnum until the dialect merge: a name lookup and `__members__` were
    # part of what a user could write, and the known venues "behave as before".
    assert Venue["BINANCE"] is Venue.BINANCE and Venue["BYBIT"] is Venue.BYBIT
    assert dict(Venue.__members__) == {v.name: v for v in Venue}
    assert Venue.__members__["BYBIT"] is Venue.BYBIT
    with pytest.raises(KeyError, match="KRAKEN"):
        Venue["KRAKEN"]
