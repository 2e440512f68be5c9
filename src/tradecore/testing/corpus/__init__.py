"""Documented venue answers, one JSON file per endpoint and case, and the rule a fake obeys.

`binance/` and `bybit/` hold `<endpoint>__<case>.json`: the HTTP method and path, the status,
the body as the venue's docs show it, `source` (the doc section, or the ccxt source, it comes
from), `verified_on_demo` (false until someone saw the same answer on the demo venue) and,
where no doc shows the whole answer, `inferred` saying what was filled in and why.
docs/venues.md ("The answer corpus") says how to add one.

A venue shipped outside tradecore (docs/extending.md) keeps its corpus beside its module and
names the folder with `register("name", folder)`; `load("name")` then reads it like the
built-in ones.

`undocumented(venue, answer)` is the rule the loopback venues are held to: an answer is
documented when some entry of the same venue, method (or `*`) and path (or `*`, an error any
endpoint may answer) has the same HTTP status and a body that `fits` the entry's body.
"""

import json
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import attrs

# The venues whose corpus is in this package; the folders by venue name, others registered.
BUILTIN = ("binance", "bybit")
_FOLDERS: dict[str, Traversable] = {
    name: resources.files(__package__).joinpath(name) for name in BUILTIN
}


def register(venue: str, folder: Traversable | Path | str) -> None:
    """Make `folder` (`<endpoint>__<case>.json` files) the corpus of the venue named `venue`."""
    _FOLDERS[venue] = Path(folder) if isinstance(folder, str) else folder
    load.cache_clear()


def venues() -> tuple[str, ...]:
    """The names of every venue with a corpus, built-in first."""
    return tuple(_FOLDERS)


ANY = "*"
# The field holding a venue's own answer code: its value must be the documented one too.
CODE_FIELDS = frozenset({"code", "retCode"})


@attrs.frozen(kw_only=True)
class Entry:
    """One documented answer of a venue's endpoint."""

    name: str  # "<endpoint>__<case>", the file's stem
    venue: str
    method: str
    path: str
    status: int
    body: Any
    source: str
    verified_on_demo: bool
    inferred: str | None = None


@attrs.frozen(kw_only=True)
class Answer:
    """One answer a server gave: what the corpus rule is applied to."""

    method: str
    path: str
    status: int
    body: Any  # parsed JSON, or the text of a non-JSON body


@cache
def load(venue: str | None = None) -> tuple[Entry, ...]:
    """Every entry of the corpus (of one venue), in file-name order."""
    found = []
    for name in tuple(_FOLDERS) if venue is None else (venue,):
        folder = _FOLDERS.get(name)
        if folder is None:
            known = ", ".join(_FOLDERS)
            raise ValueError(f"no answer corpus for {name!r}; registered: {known}")
        for item in sorted(folder.iterdir(), key=lambda f: f.name):
            if item.name.endswith(".json"):
                found.append(_entry(item.name.removesuffix(".json"), json.loads(item.read_text())))
    return tuple(found)


def _entry(name: str, raw: dict[str, Any]) -> Entry:
    return Entry(
        name=name,
        venue=raw["venue"],
        method=raw["method"],
        path=raw["path"],
        status=int(raw["status"]),
        body=raw["body"],
        source=raw["source"],
        verified_on_demo=bool(raw["verified_on_demo"]),
        inferred=raw.get("inferred"),
    )


def _kind(value: Any) -> str:
    """A JSON value's type: object, array, string, number, boolean or null."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def fits(answer: Any, example: Any) -> bool:
    """True when `answer` has no key, and no value type, that `example` does not show.

    Objects: every key of the answer is a key of the example, its value fitting the example's
    value; the venue's code (`code`, `retCode`) must also be equal. Arrays: every item fits
    some item of the example (an empty example array admits only an empty array). Scalars:
    the same JSON type (a number is a number, integer or not). A key may be missing: the
    venues leave fields out, and a fake need not say everything the venue says.
    """
    kind = _kind(answer)
    if kind != _kind(example):
        return False
    if kind == "object":
        for key, value in answer.items():
            if key not in example or not fits(value, example[key]):
                return False
            if key in CODE_FIELDS and value != example[key]:
                return False
        return True
    if kind == "array":
        return all(any(fits(item, shown) for shown in example) for item in answer)
    return True


def candidates(entries: Sequence[Entry], answer: Answer) -> Iterator[Entry]:
    """The entries that document this endpoint (or any endpoint) with the answer's status."""
    for entry in entries:
        if entry.method not in (ANY, answer.method) or entry.path not in (ANY, answer.path):
            continue
        if entry.status == answer.status:
            yield entry


def documenting(entries: Sequence[Entry], answer: Answer) -> Entry | None:
    """The first entry the answer fits, or None: the venue was never seen to say that."""
    for entry in candidates(entries, answer):
        if fits(answer.body, entry.body):
            return entry
    return None


def why_undocumented(entries: Sequence[Entry], answer: Answer) -> str:
    """What no entry shows: the closest entries' keys the answer adds, for the report."""
    near = list(candidates(entries, answer))
    own = [entry for entry in near if entry.path != ANY]
    near = own or near  # the endpoint's own entries say more than the errors any may answer
    if not near:
        return f"no entry documents {answer.method} {answer.path} with status {answer.status}"
    return "; ".join(f"{entry.name}: {_difference(answer.body, entry.body)}" for entry in near)


def _difference(answer: Any, example: Any, at: str = "") -> str:
    if _kind(answer) != _kind(example):
        return f"{at or 'body'} is {_kind(answer)}, documented {_kind(example)}"
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key not in example:
                return f"{at}.{key} is not documented"
            if key in CODE_FIELDS and value != example[key]:
                return f"{at}.{key} is {value!r}, documented {example[key]!r}"
            if not fits(value, example[key]):
                return _difference(value, example[key], f"{at}.{key}")
    if isinstance(answer, list):
        for index, item in enumerate(answer):
            if not any(fits(item, shown) for shown in example):
                if not example:
                    return f"{at}[{index}]: the documented array is empty"
                return _difference(item, example[0], f"{at}[{index}]")
    return "fits"


# Known mismatches: (venue, key, the value the loopback sends, why it is not fixed). Only
# that key with that value is let through; the rest of the answer is still matched.
# tests/contract/test_loopback_documented.py holds a strict xfail for each; the contract
# suite (tests/contract/conftest.py) checks every loopback answer with `undocumented`.
KNOWN_MISMATCHES: tuple[tuple[str, str, Any, str], ...] = ()
# None today. Binance algo answers' `icebergQuantity` was one until its examples were read
# again: the docs show JSON null, as the loopback sends it (binance/algoOrder__*.json, note).


def tolerated(venue: str, body: Any) -> Any:
    """`body` without the known mismatches' keys (where they hold the known value)."""
    if isinstance(body, list):
        return [tolerated(venue, item) for item in body]
    if not isinstance(body, dict):
        return body
    known = {(key, repr(value)) for v, key, value, _ in KNOWN_MISMATCHES if v == venue}
    return {
        key: tolerated(venue, value)
        for key, value in body.items()
        if (key, repr(value)) not in known
    }


def undocumented(venue: str, answer: Answer, *, strict: bool = False) -> str | None:
    """Why no corpus entry documents `answer`, or None when one does; `strict` lets no known
    mismatch through."""
    entries = load(venue)
    if not strict:
        answer = Answer(
            method=answer.method,
            path=answer.path,
            status=answer.status,
            body=tolerated(venue, answer.body),
        )
    if documenting(entries, answer) is not None:
        return None
    return why_undocumented(entries, answer)
