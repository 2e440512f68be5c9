import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradecore.domain.errors import DomainError
from tradecore.domain.symbols import QUOTES, to_plain, to_venue


@pytest.mark.parametrize(
    ("venue_symbol", "plain"),
    [
        ("BTC/USDT:USDT", "BTCUSDT"),
        ("1000FLOKI/USDT:USDT", "1000FLOKIUSDT"),
        ("1000000PEIPEI/USDT:USDT", "1000000PEIPEIUSDT"),
        ("ETH/USDC:USDC", "ETHUSDC"),
        ("eth/usdt:usdt", "ETHUSDT"),
        (" BTC/USDT ", "BTCUSDT"),
    ],
)
def test_a_venue_symbol_becomes_the_plain_symbol(venue_symbol, plain):
    assert to_plain(venue_symbol) == plain


def test_a_plain_symbol_stays_plain_and_upper_case():
    assert to_plain("btcusdt") == "BTCUSDT"
    assert to_plain("BTCUSDT") == "BTCUSDT"


@pytest.mark.parametrize(
    ("plain", "venue_symbol"),
    [
        ("BTCUSDT", "BTC/USDT:USDT"),
        ("1000FLOKIUSDT", "1000FLOKI/USDT:USDT"),
        ("ETHUSDC", "ETH/USDC:USDC"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT"),
        ("xdcusdt", "XDC/USDT:USDT"),
    ],
)
def test_a_plain_symbol_becomes_the_linear_perpetual_settled_in_its_quote(plain, venue_symbol):
    assert to_venue(plain) == venue_symbol


@pytest.mark.parametrize("bad", ["", "   ", None, 42, b"BTCUSDT", ["BTCUSDT"]])
def test_a_symbol_must_be_a_non_empty_string(bad):
    with pytest.raises(DomainError, match="non-empty string"):
        to_plain(bad)


@pytest.mark.parametrize("bad", ["/USDT:USDT", "BTC/:USDT", "BTC/"])
def test_a_venue_symbol_without_base_or_quote_is_refused(bad):
    with pytest.raises(DomainError, match="BASE/QUOTE"):
        to_plain(bad)


@pytest.mark.parametrize("bad", ["BTC-USDT", "BTC_USDT", "BTC USDT", "BTCUSDT;DROP"])
def test_a_plain_symbol_with_other_characters_is_refused(bad):
    with pytest.raises(DomainError, match="letters and digits"):
        to_plain(bad)


@pytest.mark.parametrize("bad", ["BTCEUR", "USDT", "BTCBUSD", "ETHBTC"])
def test_a_symbol_not_quoted_in_a_supported_stablecoin_has_no_venue_form(bad):
    with pytest.raises(DomainError, match="quote currency"):
        to_venue(bad)


bases = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=16)


@given(bases, st.sampled_from(QUOTES))
def test_plain_and_venue_symbols_round_trip(base, quote):
    plain = base + quote
    venue_symbol = to_venue(plain)
    assert to_plain(venue_symbol) == plain
    assert to_venue(to_plain(venue_symbol)) == venue_symbol
    assert venue_symbol.endswith(f"/{quote}:{quote}")


@given(bases, st.sampled_from(QUOTES))
def test_normalising_ignores_case_and_surrounding_space(base, quote):
    messy = f"  {base.lower()}/{quote.lower()}:{quote.lower()} "
    assert to_plain(messy) == to_plain(f"{base}/{quote}:{quote}") == base + quote


@pytest.mark.parametrize(
    "bad", ["B-TC/USDT:USDT", "BTC /USDT:USDT", "BTC/US DT:USDT", "/USDT:USDT"]
)
def test_a_venue_symbol_with_anything_but_letters_and_digits_is_refused(bad: str) -> None:
    with pytest.raises(DomainError):
        to_plain(bad)
