"""The thin runner: parse, wire, start. No trading logic lives here."""

import sys
import types

# What runner/ held before the composition layer moved into the library (issue 13): an
# import of the old path is told where it went instead of "No module named ...".
_MOVED = {
    "runner.config": "tradecore.wiring.config",
    "runner.container": "tradecore.wiring.container",
    "runner.errors": "tradecore.wiring.errors",
    "runner.health": "tradecore.wiring.health",
    "runner.lifecycle": "tradecore.wiring.lifecycle",
    "runner.logging": "tradecore.wiring.logs",
    "runner.paper": "tradecore.wiring.paper",
}


def _moved(name: str, *_: object) -> None:
    """A finder consulted after every other one: only a name no module has reaches it."""
    if name in _MOVED:
        raise ImportError(
            f"{name} moved into the library: import {_MOVED[name]} "
            "(tradecore.wiring exports its public names)",
            name=name,
        )


if not any(getattr(finder, "find_spec", None) is _moved for finder in sys.meta_path):
    sys.meta_path.append(types.SimpleNamespace(find_spec=_moved))
