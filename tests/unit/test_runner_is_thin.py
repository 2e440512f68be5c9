"""The runner only parses, wires and starts (issue 13): what a library user could reuse lives in
`tradecore` (the composition layer is `tradecore.wiring`, docs/architecture.md)."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import runner

RUNNER = Path(runner.__file__).parent
MAX_LINES = 1_500
# argparse's parser, told to exit 2 on bad usage: the one class the command line needs
ALLOWED_BASES = {"argparse.ArgumentParser"}


def _modules() -> list[Path]:
    return sorted(RUNNER.glob("*.py"))


def test_the_runner_stays_under_its_line_budget() -> None:
    counts = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in _modules()}
    total = sum(counts.values())
    print(f"runner/*.py: {total} lines ({', '.join(f'{n} {c}' for n, c in counts.items())})")
    assert total <= MAX_LINES, (
        f"runner/ holds {total} lines, more than {MAX_LINES}: move what is more than parsing, "
        "wiring and start-up into the library (tradecore.wiring or an adapter)"
    )


def test_the_runner_defines_no_class_beyond_its_argument_parser() -> None:
    """A class in runner/ is logic a notebook cannot import; the argument parser is the one
    exception, and it only overrides how bad usage exits."""
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases}
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
                if not bases or not bases <= ALLOWED_BASES or len(methods) > 1:
                    found.append(f"{path.name}: class {node.name}({', '.join(sorted(bases))})")
    assert not found, f"classes with more than wiring in runner/: {found}"


def test_the_library_does_not_need_the_runner_to_run_a_session() -> None:
    """What the runner starts is importable without it (the composition layer's public names)."""
    import tradecore.wiring as wiring

    for name in ("Config", "Container", "load_config", "run_paper", "HealthServer"):
        assert getattr(wiring, name).__module__.startswith("tradecore.wiring.")
    assert all(getattr(wiring, name) is not None for name in wiring.__all__)


# runner/<module> before the composition layer moved into the library (issue 13)
MOVED = {
    "config": "tradecore.wiring.config",
    "container": "tradecore.wiring.container",
    "errors": "tradecore.wiring.errors",
    "health": "tradecore.wiring.health",
    "lifecycle": "tradecore.wiring.lifecycle",
    "paper": "tradecore.wiring.paper",
}


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_a_notebook_importing_a_moved_runner_module_is_told_where_it_went(
    old: str, new: str
) -> None:
    importlib.import_module(new)  # where it lives now
    with pytest.raises(ImportError, match=re.escape(new)):
        importlib.import_module(f"runner.{old}")
