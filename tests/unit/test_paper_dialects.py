"""The paper engine asks its venue's dialect, never the venue's name.

A syntax-tree walk over `adapters/paper/` (all but its venue modules, `venues/`) and the
domain's `Venue` finds any branch on a venue: a comparison with `Venue.BINANCE`/`Venue.BYBIT`
or a "binance"/"bybit" string, a dictionary keyed by one, a match on one, a function or
attribute named like `is_binance`. Docstrings and comments are not code and do not count.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import tradecore
from tradecore.adapters.paper import PaperExchange, VenueEngine
from tradecore.adapters.paper.venues import BINANCE, BYBIT, DIALECTS, PaperDialect
from tradecore.domain.model import Venue
from tradecore.ports.exchange import RejectReason

SRC = Path(tradecore.__file__).parent
SCANNED = (SRC / "adapters" / "paper", SRC / "domain" / "model.py")
VENUE_MODULES = SRC / "adapters" / "paper" / "venues"
NAMES = {"binance", "bybit"}
NAMED_LIKE = re.compile(r"(^|_)(is_)?(binance|bybit)($|_)", re.IGNORECASE)


def _names_a_venue(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in {"BINANCE", "BYBIT"}:
        return True
    return isinstance(node, ast.Constant) and str(node.value).lower() in NAMES


def branches(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every place in `tree` that branches on a venue's name, with what it is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            if any(_names_a_venue(n) for n in (node.left, *node.comparators)):
                yield node.lineno, "comparison with a venue"
        elif isinstance(node, ast.Dict):
            if any(k is not None and _names_a_venue(k) for k in node.keys):
                yield node.lineno, "dictionary keyed by a venue"
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
            if any(k.arg and k.arg.lower() in NAMES for k in node.keywords):
                yield node.lineno, "dict(...) keyed by a venue"
        elif isinstance(node, ast.match_case):
            if any(_names_a_venue(n) for n in ast.walk(node.pattern)):
                yield node.pattern.lineno, "match on a venue"
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if NAMED_LIKE.search(node.name):
                yield node.lineno, f"function named {node.name}"
        elif (
            isinstance(node, ast.Attribute)
            and NAMED_LIKE.search(node.attr)
            and node.attr not in {"BINANCE", "BYBIT"}
        ):
            yield node.lineno, f"attribute named {node.attr}"


def sources() -> Iterator[Path]:
    for place in SCANNED:
        files = [place] if place.is_file() else sorted(place.rglob("*.py"))
        yield from (f for f in files if VENUE_MODULES not in f.parents)


def test_the_paper_engine_has_no_venue_branch_outside_its_venue_modules() -> None:
    found = [
        f"{path.relative_to(SRC)}:{line}: {what}"
        for path in sources()
        for line, what in branches(ast.parse(path.read_text(), str(path)))
    ]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "if venue is Venue.BINANCE: pass",
        "ok = venue != 'bybit'",
        "x = 1 if self.venue.value == 'Binance' else 2",
        "CODES = {Venue.BYBIT: 1}",
        "CODES = dict(binance=1)",
        "match venue:\n    case Venue.BYBIT: pass",
        "def _is_binance(self): pass",
        "flag = self._binance",
    ],
)
def test_the_walk_catches_every_form_of_a_venue_branch(snippet: str) -> None:
    assert list(branches(ast.parse(snippet)))


def test_a_docstring_naming_a_venue_is_not_a_branch() -> None:
    assert not list(branches(ast.parse('"""Binance and Bybit differ."""\nx = "binance"\n')))


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
