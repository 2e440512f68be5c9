"""One writer per stop, checked on the source: only the stop keeper calls the stop commands."""

import ast
from pathlib import Path

import tradecore.app

STOP_COMMANDS = {"create_stop_order", "set_position_stop"}
APP = Path(tradecore.app.__file__).parent


def calls_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def names_in(path: Path) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Name)}


def test_no_use_case_but_the_stop_keeper_places_or_moves_a_stop() -> None:
    # The keeper's writes live in stop_writer.py (its hands, unlocked), which only the
    # keeper builds and calls, under the symbol's lock.
    writers = {path.name for path in APP.glob("*.py") if calls_in(path) & STOP_COMMANDS}
    assert writers == {"stop_writer.py"}
    users = {path.name for path in APP.glob("*.py") if "StopWriter" in names_in(path)}
    assert users == {"stop_keeper.py"}


def test_amending_orders_is_the_stop_keepers_or_the_aged_exit_orders_only() -> None:
    # The aged manager amends its own limit exit orders (never a stop): see app/aged.py.
    amenders = {path.name for path in APP.glob("*.py") if "amend_order" in calls_in(path)}
    assert amenders <= {"stop_writer.py", "exit_writer.py"}


def test_only_the_keepers_writers_send_anything_but_an_entry() -> None:
    # The keeper owns every order that protects or exits a position (issue 10, design 5):
    # the open sends its entry; every stop, exit order, market close and cancel is the
    # keeper's, under the symbol's lock.
    orders = {"create_market_order", "create_limit_order", "cancel_order", "amend_order"}
    senders = {path.name for path in APP.glob("*.py") if calls_in(path) & orders}
    assert senders == {"stop_writer.py", "exit_writer.py", "open_position.py"}
    writers = {"StopWriter", "ExitWriter"}
    users = {path.name for path in APP.glob("*.py") if names_in(path) & writers}
    assert users == {"stop_keeper.py"}
