"""Every example in the docs runs as written (issue 13, "Docs that run").

`docs/*.md` and `README.md` are read like notebooks:

- Every fenced ```python block of one file runs in order, in one namespace; a top-level
  `await` runs as a notebook runs it (compiled with `ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`), on
  the test's event loop, in a fresh temporary working directory.
- A fenced block whose first line starts with `>>>` (whatever its language) is a doctest,
  run with doctest in that same namespace.
- Then every `test_…` function the file's blocks defined is called (and awaited), as pytest
  would, so a guide's example tests are run, not only defined.
- Files a user copies are parsed: ```toml (tomllib), ```json, ```ini (configparser; a systemd
  unit also as systemd reads it: no comment after a value, StartLimitIntervalSec in [Unit]),
  ```yaml (PyYAML when installed, else a structural check) and ```csv (every row as wide as
  the header). Each is its own test.
- Shell, SQL and output blocks are not run.

A block that is not meant to run on its own is preceded by `<!-- not run: the reason -->`
on the line before its fence (blank lines between are allowed); the reason is required.
A failure names the file and the line of the example, and the line inside it that failed.
One test per file runs its notebook, so the first failing example ends that file's run
(the blocks after it build on it); every other file still runs.
"""

import ast
import configparser
import csv
import doctest
import inspect
import io
import json
import re
import tomllib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md")

PYTHON = frozenset({"python", "py", "python3", "pycon"})
DATA = frozenset({"toml", "json", "ini", "systemd", "yaml", "yml", "csv"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run\b(?P<reason>.*?)-->\s*$")
# an untagged block that holds Python statements should say so (and then it runs)
_PYTHON_LINE = re.compile(r"^\s*(import \w|from [\w.]+ import |def |async def |class \w|await )")


@dataclass(frozen=True)
class Block:
    """One fenced block of a markdown file."""

    path: Path
    line: int  # 1-based line of the block's first line inside the fence
    language: str
    source: str
    not_run: str | None  # None: runs; otherwise the reason the marker gives ("" for none)
    marker_line: int | None = None  # the line of its `<!-- not run … -->` marker

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        first = next((text for text in self.source.splitlines() if text.strip()), "")
        return first.lstrip().startswith(">>>")

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON and not self.is_doctest


class ExampleFailed(Exception):
    """An example of the docs did not run as written; the message says where and why."""


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, in order, with their not-run markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        opened = _FENCE.match(lines[number])
        if opened is None:
            number += 1
            continue
        fence, indent = opened["fence"], len(opened["indent"])
        end = number + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        body = [_dedent(text, indent) for text in lines[number + 1 : end]]
        language = (opened["info"].split() or [""])[0].lower()
        marker_line, reason = _marker_before(lines, number)
        blocks.append(
            Block(
                path=path,
                line=number + 2,
                language=language,
                source="\n".join(body) + "\n",
                not_run=reason,
                marker_line=marker_line,
            )
        )
        number = end + 1
    return blocks


def _closes(text: str, fence: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}


def _dedent(text: str, indent: int) -> str:
    cut = min(indent, len(text) - len(text.lstrip(" \t")))
    return text[cut:]


def _marker_before(lines: list[str], fence_line: int) -> tuple[int | None, str | None]:
    previous = fence_line - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    marker = _NOT_RUN.match(lines[previous]) if previous >= 0 else None
    if marker is None:
        return None, None
    return previous + 1, _reason(marker)


def _reason(marker: re.Match[str]) -> str:
    return marker["reason"].strip().lstrip(":").strip()


def not_run_markers(path: Path) -> list[tuple[int, str]]:
    """Every `<!-- not run … -->` line of a file outside its code blocks, with its reason
    ("" when none is given)."""
    inside = {
        block.line + offset
        for block in blocks_of(path)
        for offset in range(len(block.source.splitlines()))
    }
    found = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        marker = _NOT_RUN.match(text)
        if marker is not None and number not in inside:
            found.append((number, _reason(marker)))
    return found


# ------------------------------------------------------------------ running a file's examples


async def run_examples(path: Path) -> int:
    """Run a file's Python and doctest blocks as a notebook, then its `test_` functions.

    Returns how many examples ran; raises ExampleFailed naming the first that failed.
    """
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    ran = 0
    for block in blocks_of(path):
        if block.not_run is not None:
            continue
        if block.is_doctest:
            _run_doctest(block, namespace)
        elif block.is_python:
            await _run_python(block, namespace)
        else:
            continue
        ran += 1
    for function in _test_functions(path, namespace):
        await _run_test_function(path, function)
        ran += 1
    return ran


async def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    # Padding puts every statement on its line of the markdown file, so a traceback (and
    # linecache) shows the document's own line.
    padded = "\n" * (block.line - 1) + block.source
    try:
        code = compile(
            padded,
            str(block.path),
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
        )
    except SyntaxError as error:
        raise ExampleFailed(
            f"{block.where}: this python example does not compile: "
            f"{_shown(block.path)}:{error.lineno}: {error.msg}"
        ) from None
    try:
        result = eval(code, namespace)  # exec, or a coroutine when the block awaits
        if inspect.iscoroutine(result):
            await result
    except Exception as error:
        failure = _failure(f"{block.where}: this python example fails", block.path, error)
        raise ExampleFailed(failure) from None


def _run_doctest(block: Block, namespace: dict[str, Any]) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.source, namespace, block.where, str(block.path), block.line - 1
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)  # DocTest runs on a copy: later blocks see its names
    if runner.failures:
        raise ExampleFailed(f"{block.where}: this >>> example fails:\n{report.getvalue()}")


def _test_functions(path: Path, namespace: dict[str, Any]) -> list[Callable[..., Any]]:
    functions = [
        value
        for name, value in namespace.items()
        if name.startswith("test_")
        and inspect.isfunction(value)
        and value.__code__.co_filename == str(path)
    ]
    return sorted(functions, key=lambda function: function.__code__.co_firstlineno)


async def _run_test_function(path: Path, function: Callable[..., Any]) -> None:
    where = f"{_shown(path)}:{function.__code__.co_firstlineno}"
    if inspect.signature(function).parameters:
        raise ExampleFailed(f"{where}: {function.__name__} takes arguments; doc tests take none")
    try:
        result = function()
        if inspect.iscoroutine(result):
            await result
    except Exception as error:
        raise ExampleFailed(_failure(f"{where}: {function.__name__} fails", path, error)) from None


def _failure(headline: str, path: Path, error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    in_doc = [frame for frame in frames if frame.filename == str(path)]
    # the harness's own frames come first: show the traceback from the document on
    shown = frames[frames.index(in_doc[0]) :] if in_doc else frames
    lines = [headline]
    if in_doc:
        last = in_doc[-1]
        lines.append(f"  at {_shown(path)}:{last.lineno}: {(last.line or '').strip()}")
    lines.append("".join(traceback.format_list(shown)).rstrip())
    lines.append("".join(traceback.format_exception_only(error)).rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------ parsing the files users copy


def check_data(block: Block) -> None:
    """Parse a config / data block; raise ExampleFailed saying where it is wrong."""
    try:
        _PARSERS[block.language](block.source)
    except Exception as error:
        raise ExampleFailed(
            f"{block.where}: this {block.language} example does not parse: {error}"
        ) from None


def _toml(text: str) -> None:
    tomllib.loads(text)


def _json(text: str) -> None:
    json.loads(text)


def _ini(text: str) -> None:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(text)
    if not parser.sections():
        raise ValueError("no [section]")
    if {"Unit", "Service", "Install", "Timer", "Socket"} & set(parser.sections()):
        _systemd_values(parser)


# systemd's directive table (src/core/load-fragment-gperf.gperf.in) reads these in [Unit]
# only; in [Service] it logs "Unknown key name" and ignores them ([Service] keeps just the
# legacy StartLimitInterval/StartLimitBurst).
_UNIT_ONLY = frozenset({"StartLimitIntervalSec"})


def _systemd_values(parser: configparser.ConfigParser) -> None:
    # systemd.syntax(7): "Empty lines and lines starting with "#" or ";" are ignored" — a
    # comment after a value is part of the value (freedesktop.org/software/systemd/man/
    # systemd.syntax.html), so `RestartSec=5  # why` is an invalid setting that systemd skips.
    for section in parser.sections():
        for key, value in parser.items(section):
            if re.search(r"\s[#;]", value):
                raise ValueError(
                    f"[{section}] {key}={value!r}: systemd has no comments after a value; "
                    "put the comment on a line of its own"
                )
            if key in _UNIT_ONLY and section != "Unit":
                raise ValueError(f"[{section}] {key}: systemd reads {key} only in [Unit]")


def _yaml(text: str) -> None:
    try:
        import yaml
    except ImportError:  # no PyYAML: a structural check only
        _yaml_shape(text)
        return
    list(yaml.safe_load_all(text))


def _yaml_shape(text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValueError(f"line {number}: YAML is indented with spaces, not tabs")
        body = line.strip()
        if body and not body.startswith(("#", "-", "---", "...")) and ":" not in body:
            raise ValueError(f"line {number}: neither `key: value` nor a `- item`: {body!r}")


def _csv(text: str) -> None:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2:
        raise ValueError("a header and at least one row are expected")
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ValueError(f"row {number} has {len(row)} fields, the header {width}")


_PARSERS: dict[str, Callable[[str], None]] = {
    "toml": _toml,
    "json": _json,
    "ini": _ini,
    "systemd": _ini,
    "yaml": _yaml,
    "yml": _yaml,
    "csv": _csv,
}


def untagged_python(path: Path) -> list[str]:
    """Blocks with no language that hold Python statements: tag them so they run."""
    found = []
    for block in blocks_of(path):
        if block.language or block.not_run is not None or block.is_doctest:
            continue
        if not any(_PYTHON_LINE.match(text) for text in block.source.splitlines()):
            continue
        try:
            compile(block.source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError:
            continue  # shell or output that happens to start like Python
        found.append(block.where)
    return found


# ------------------------------------------------------------------ the tests

_RUNNABLE = [
    path
    for path in DOCUMENTS
    if any(
        (block.is_python or block.is_doctest) and block.not_run is None for block in blocks_of(path)
    )
]
_DATA = [
    block
    for path in DOCUMENTS
    for block in blocks_of(path)
    if block.language in DATA and block.not_run is None
]


@pytest.mark.parametrize("path", _RUNNABLE, ids=[_shown(path) for path in _RUNNABLE])
async def test_python_examples_run_as_written(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an example may write files (a spool, a database)
    failure, ran = None, 0
    try:
        ran = await run_examples(path)
    except ExampleFailed as failed:
        failure = str(failed)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    assert ran > 0


@pytest.mark.parametrize("block", _DATA, ids=[f"{b.where} {b.language}" for b in _DATA])
def test_file_examples_parse(block: Block) -> None:
    failure = None
    try:
        check_data(block)
    except ExampleFailed as failed:
        failure = str(failed)
    if failure is not None:
        pytest.fail(failure, pytrace=False)


def test_every_not_run_marker_gives_a_reason_and_stands_before_a_block() -> None:
    problems = []
    for path in DOCUMENTS:
        marked = {block.marker_line for block in blocks_of(path)}
        for number, reason in not_run_markers(path):
            if not reason:
                problems.append(f"{_shown(path)}:{number}: say why: <!-- not run: the reason -->")
            if number not in marked:
                problems.append(f"{_shown(path)}:{number}: a not-run marker with no block after it")
    assert not problems, "\n".join(problems)


def test_python_blocks_say_they_are_python() -> None:
    untagged = [where for path in DOCUMENTS for where in untagged_python(path)]
    assert not untagged, "tag these blocks ```python so they run: " + ", ".join(untagged)


def test_the_docs_have_examples_to_run() -> None:
    # the collector itself: a change to the fence syntax must not silently find nothing
    assert {_shown(path) for path in _RUNNABLE} >= {"docs/domain.md", "docs/testing.md"}
    assert any(block.language == "ini" for block in _DATA)


# ------------------------------------------------------------------ the collector on known input


async def test_a_failing_example_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# a page\n\n```python\nx = 1\n```\n\ntext\n\n```python\ny = x + 1\nz = y / 0\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(ExampleFailed) as failed:
        await run_examples(page)
    message = str(failed.value)
    assert message.startswith(f"{page}:10: this python example fails")
    assert f"at {page}:11: z = y / 0" in message
    assert "ZeroDivisionError" in message


async def test_a_notebook_awaits_at_top_level_and_runs_its_tests(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport asyncio\nawait asyncio.sleep(0)\nseen = []\n```\n\n"
        "```python\nasync def test_it():\n    seen.append(1)\n    assert False, 'ran'\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(ExampleFailed, match=rf"{re.escape(str(page))}:8: test_it fails"):
        await run_examples(page)


async def test_a_doctest_block_is_checked_against_its_output(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```pycon\n>>> 1 + 1\n2\n>>> 2 + 2\n5\n```\n", encoding="utf-8")
    with pytest.raises(ExampleFailed) as failed:
        await run_examples(page)
    assert f"{page}:2: this >>> example fails" in str(failed.value)
    assert f'File "{page}", line 4' in str(failed.value)


async def test_doctest_and_python_blocks_share_one_namespace(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\na = 1\n```\n\n```pycon\n>>> b = a + 1\n>>> b\n2\n```\n\n"
        "```python\nassert b == 2\n```\n",
        encoding="utf-8",
    )
    assert await run_examples(page) == 3


async def test_a_marked_block_is_skipped_only_with_a_reason(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not run: needs real keys -->\n```python\nraise SystemExit\n```\n"
        "<!-- not run -->\n\n```python\nraise SystemExit\n```\n",
        encoding="utf-8",
    )
    assert [block.not_run for block in blocks_of(page)] == ["needs real keys", ""]
    assert not_run_markers(page) == [(1, "needs real keys"), (5, "")]
    assert await run_examples(page) == 0
    shown = tmp_path / "shown.md"  # a marker shown inside a code block is not a marker
    shown.write_text("```markdown\n<!-- not run -->\n```\n", encoding="utf-8")
    assert not_run_markers(shown) == []


@pytest.mark.parametrize(
    ("unit", "problem"),
    [
        ("[Service]\nRestartSec=5   # five seconds\n", "no comments after a value"),
        ("[Service]\nStartLimitIntervalSec=0\n", "only in \\[Unit\\]"),
    ],
)
def test_a_systemd_unit_systemd_would_misread_is_refused(unit: str, problem: str) -> None:
    block = Block(path=ROOT / "x.md", line=3, language="ini", source=unit, not_run=None)
    with pytest.raises(ExampleFailed, match=rf"x.md:3: .*{problem}"):
        check_data(block)
    check_data(
        Block(path=ROOT / "x.md", line=3, language="ini", source="[Unit]\nA=1\n", not_run=None)
    )


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("toml", "[trading\nmode = 'paper'\n"),
        ("json", '{"id": "s1",}\n'),
        ("ini", "Restart=on-failure\n"),
        ("yaml", "services:\n\tbot: {}\n"),
        ("csv", "timestamp,symbol,mark\n2026-05-04T09:00:00Z,XYZUSDT\n"),
    ],
)
def test_a_file_example_that_does_not_parse_is_reported(language: str, text: str) -> None:
    block = Block(path=ROOT / "x.md", line=7, language=language, source=text, not_run=None)
    with pytest.raises(ExampleFailed, match=rf"^x.md:7: this {language} example does not parse"):
        check_data(block)


def test_an_untagged_block_of_python_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```\nimport os\nos.getcwd()\n```\n\n```\npython -m runner --help\n```\n",
        encoding="utf-8",
    )
    assert untagged_python(page) == [f"{page}:2"]
