"""docs/testing.md's examples run as written: every `test_` function in its python blocks."""

import inspect
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _doc_examples() -> list[tuple[str, object]]:
    examples = []
    for number, source in enumerate(BLOCK.findall(DOC.read_text(encoding="utf-8"))):
        if "def test_" not in source:
            continue
        namespace: dict[str, object] = {"__name__": f"testing_md_block_{number}"}
        exec(compile(source, f"{DOC}:block{number}", "exec"), namespace)
        examples += [(n, f) for n, f in namespace.items() if n.startswith("test_")]
    return examples


EXAMPLES = _doc_examples()


def test_the_testing_guide_has_runnable_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
async def test_testing_guide_example_passes(name: str, example: object) -> None:
    assert inspect.iscoroutinefunction(example), name
    await example()  # type: ignore[operator]
