"""Each venue's paper dialect: its own answers, its registry, the engine refusing in its words.

That the paper engine (and the domain's `Venue`) never branch on a venue's name is checked by
the one syntax-tree walk over all of src/tradecore, tests/unit/test_no_venue_branches.py.
"""

import re

import attrs
import pytest

from tradecore.adapters.paper import PaperExchange, VenueEngine
from tradecore.adapters.paper.venues import BINANCE, BYBIT, DIALECTS, PaperDialect
from tradecore.domain.model import Venue
from tradecore.ports.exchange import RejectReason


def test_each_known_venue_has_its_dialect_with_its_own_answers() -> None:
    assert DIALECTS[Venue.BINANCE] is BINANCE and DIALECTS[Venue.BYBIT] is BYBIT
    assert all(isinstance(d, PaperDialect) for d in DIALECTS.values())
    assert BINANCE.quantity_off_step().code == "-4023"
    assert BYBIT.quantity_off_step().code == "10001"  # Bybit's generic parameter error
    assert BINANCE.conditional_cap == 200 and not BINANCE.conditional_cap_per_symbol
    assert BYBIT.conditional_cap == 10 and BYBIT.conditional_cap_per_symbol


def test_a_venue_without_a_dialect_is_named_in_the_refusal() -> None:
    empty = type(DIALECTS)()  # a registry nobody registered with (the global one stays as is)
    with pytest.raises(KeyError, match=re.escape("no paper dialect for <Venue.BYBIT: 'bybit'>")):
        empty[Venue.BYBIT]
    assert empty.add(BYBIT) is BYBIT and empty[Venue.BYBIT] is BYBIT
    assert empty.add(BYBIT) is BYBIT  # again: harmless
    with pytest.raises(ValueError, match="already has a different paper dialect"):
        empty.add(attrs.evolve(BYBIT, taker_fee=BYBIT.taker_fee * 2))


def test_the_engine_refuses_in_the_dialects_words() -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from tradecore.adapters.clock import VirtualClock

    for dialect in (BINANCE, BYBIT):
        clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
        engine = VenueEngine(
            dialect, now=clock.now, markets=dialect.markets, marks={"BTCUSDT": Decimal(50_000)}
        )
        PaperExchange(engine, clock=clock)
        refused = engine.place_market("BTCUSDT", "up", Decimal("0.01"))
        assert refused == dialect.invalid_side("up")
        assert refused.reason is RejectReason.OTHER  # type: ignore[union-attr]
