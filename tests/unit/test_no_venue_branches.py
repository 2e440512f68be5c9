"""No code outside a venue's own module asks which venue it is talking to.

Each venue's facts and behaviour live in its module (docs/extending.md); shared code asks the
venue's dialect, never the venue's name. A test walks the syntax tree of every module under
src/tradecore and runner/ and names each place that branches on a venue: a comparison with
`Venue.BINANCE`/`Venue.BYBIT` or a "binance"/"bybit" string, a dict keyed by them, a match on
them, a conditional expression testing them, or a function or attribute named `is_binance` /
`is_bybit`. Docstrings and comments do not count.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (ROOT / "src" / "tradecore", ROOT / "runner")
VENUE_NAMES = ("binance", "bybit")

# A venue's own module may name its venue: that is where its facts live.
VENUE_MODULES = (
    "src/tradecore/adapters/ccxt/venues/",
    "src/tradecore/adapters/paper/venues/",
    "src/tradecore/testing/loopback/binance.py",
    "src/tradecore/testing/loopback/bybit.py",
    "src/tradecore/testing/corpus/",
)

# is_binance, _is_bybit_account, self._binance: a flag that stands for "which venue"
_VENUE_PREDICATE = re.compile(r"(^|_)is_(binance|bybit)($|_)|^_+(binance|bybit)$", re.IGNORECASE)
# Venue.BINANCE, and a venue module's dialect constant (paper.venues.BYBIT)
_VENUE_CONSTANTS = frozenset(name.upper() for name in VENUE_NAMES)
# "binance", "Bybit", "binanceusdm" (ccxt's id): a string that names a venue
_VENUE_STRING = re.compile(r"^\s*(binance|bybit)", re.IGNORECASE)


def _names_a_venue(node: ast.AST) -> bool:
    """`Venue.BINANCE`, a venue's module constant (`venues.BYBIT`, `BINANCE`: its dialect),
    or a string naming a venue."""
    if isinstance(node, ast.Attribute):
        return node.attr in _VENUE_CONSTANTS
    if isinstance(node, ast.Name):
        return node.id in _VENUE_CONSTANTS
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _VENUE_STRING.match(node.value) is not None
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_venue(element) for element in node.elts)
    return False


def _tests_a_venue(node: ast.AST) -> bool:
    """An expression whose truth depends on which venue it is (a comparison with one)."""
    return any(
        isinstance(sub, ast.Compare) and any(map(_names_a_venue, (sub.left, *sub.comparators)))
        for sub in ast.walk(node)
    )


def _pattern_names_a_venue(pattern: ast.pattern) -> bool:
    for sub in ast.walk(pattern):
        if isinstance(sub, ast.MatchValue) and _names_a_venue(sub.value):
            return True
        if isinstance(sub, ast.MatchSingleton) and _names_a_venue(ast.Constant(sub.value)):
            return True
    return False


def _is_dict_call(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Name) and node.func.id == "dict"


def venue_branches(source: str) -> list[tuple[int, str]]:
    """Each (line, what) in `source` that branches on a venue's identity, one per line."""
    found: dict[int, str] = {}
    for line, what in _findings(ast.parse(source)):
        found.setdefault(line, what)
    return sorted(found.items())


def _findings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and _tests_a_venue(node.test):
            yield node.lineno, "conditional expression on a venue"
        elif isinstance(node, ast.Compare) and _tests_a_venue(node):
            yield node.lineno, "comparison with a venue"
        elif _dict_keyed(node):
            yield node.lineno, "dict keyed by a venue"
        elif isinstance(node, ast.Call) and _is_dict_call(node) and _dict_call_keyed(node):
            yield node.lineno, "dict(...) keyed by a venue"
        elif isinstance(node, ast.Match) and any(
            _pattern_names_a_venue(case.pattern) for case in node.cases
        ):
            yield node.lineno, "match on a venue"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _VENUE_PREDICATE.search(
            node.name
        ):
            yield node.lineno, f"venue predicate {node.name}"
        elif isinstance(node, ast.Attribute) and _VENUE_PREDICATE.search(node.attr):
            yield node.lineno, f"venue predicate .{node.attr}"
        elif isinstance(node, ast.Name) and _VENUE_PREDICATE.search(node.id):
            yield node.lineno, f"venue predicate {node.id}"


def _dict_keyed(node: ast.AST) -> bool:
    """{Venue.BINANCE: ...} or {"bybit": v for ...}."""
    if isinstance(node, ast.Dict):
        return any(key is not None and _names_a_venue(key) for key in node.keys)
    return isinstance(node, ast.DictComp) and _names_a_venue(node.key)


def _dict_call_keyed(node: ast.Call) -> bool:
    """dict(binance=..., ...), dict([(Venue.BINANCE, ...)]) or dict({...: ...})."""
    if any(kw.arg is not None and kw.arg.lower() in VENUE_NAMES for kw in node.keywords):
        return True
    for arg in node.args:
        elements = arg.elts if isinstance(arg, (ast.List, ast.Tuple, ast.Set)) else ()
        for element in elements:
            if isinstance(element, ast.Tuple) and element.elts and _names_a_venue(element.elts[0]):
                return True
    return False


def _scanned_files() -> Iterator[tuple[str, Path]]:
    for top in SCANNED:
        for path in sorted(top.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(VENUE_MODULES):
                continue
            yield relative, path


def all_venue_branches() -> list[str]:
    return [
        f"{relative}:{line}: {what}"
        for relative, path in _scanned_files()
        for line, what in venue_branches(path.read_text(encoding="utf-8"))
    ]


def test_no_code_outside_a_venue_module_branches_on_the_venue() -> None:
    found = all_venue_branches()
    assert not found, f"{len(found)} venue branches outside the venue modules:\n" + "\n".join(found)


PLANTED = [
    ("if venue is Venue.BINANCE:\n    pass", "comparison"),
    ("if venue is not Venue.BYBIT:\n    pass", "comparison"),
    ("ok = venue == Venue.BINANCE", "comparison"),
    ("ok = venue != 'bybit'", "comparison"),
    ("ok = name.lower() == 'Binance'", "comparison"),
    ("ok = venue in (Venue.BINANCE, Venue.BYBIT)", "comparison"),
    ("ok = venue not in ('binance',)", "comparison"),
    ("ok = 'bybit' == venue.value", "comparison"),
    ("table = {Venue.BINANCE: 1, Venue.BYBIT: 2}", "dict keyed"),
    ("table = {'binance': 1}", "dict keyed"),
    ("table = {v: 1 for v in ()} | {'BYBIT': 2}", "dict keyed"),
    ("table = {'bybit': v for v in ()}", "dict keyed"),
    ("table = dict(binance=1, bybit=2)", "dict(...) keyed"),
    ("table = dict([(Venue.BYBIT, 2)])", "dict(...) keyed"),
    ("match venue:\n    case Venue.BINANCE:\n        pass", "match"),
    ("match venue:\n    case 'bybit' | 'other':\n        pass", "match"),
    ("x = 1 if venue is Venue.BYBIT else 2", "conditional expression"),
    ("def is_binance(v):\n    return False", "predicate"),
    ("async def _is_bybit_account(v):\n    return False", "predicate"),
    ("ok = profile.is_bybit", "predicate"),
    ("ok = is_binance", "predicate"),
    ("if self._binance:\n    pass", "predicate"),
    ("ok = client.id == 'binanceusdm'", "comparison"),
    ("x = 1 if self.venue.value == 'Binance' else 2", "conditional expression"),
    ("match venue:\n    case venues.BYBIT:\n        pass", "match"),
    ("if dialect is BINANCE:\n    pass", "comparison"),
    ("ok = engine.dialect == venues.BYBIT", "comparison"),
    ("table = {BYBIT: 1}", "dict keyed"),
    ("def _is_binance(self):\n    pass", "predicate"),
]

NOT_BRANCHES = [
    '"""Binance and Bybit: a docstring names them."""',
    "# if venue is Venue.BINANCE: a comment",
    "venue = Venue.BINANCE",
    "client = make('binance')",
    "dialect = dialect_for(venue)",
    "names = ('binance', 'bybit')",
    "ok = venue is dialect.venue",
    "dialects = (BINANCE, BYBIT)",
    "engine = VenueEngine(venues.BYBIT)",
    "table = {dialect.venue: dialect for dialect in dialects}",
]


@pytest.mark.parametrize(("source", "kind"), PLANTED)
def test_each_form_of_venue_branch_is_caught(source: str, kind: str) -> None:
    found = list(venue_branches(source))
    assert found, f"not caught: {source!r}"
    assert any(kind in what for _, what in found), found


@pytest.mark.parametrize("source", NOT_BRANCHES)
def test_naming_a_venue_without_branching_on_it_is_allowed(source: str) -> None:
    assert list(venue_branches(source)) == []


def test_a_finding_names_its_line() -> None:
    source = "x = 1\n\nif venue is Venue.BYBIT:\n    pass\n"
    assert [line for line, _ in venue_branches(source)] == [3]
