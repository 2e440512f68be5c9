"""The loopback venues may never say what the real venue never would.

Every REST answer a loopback server gives during a contract test is matched to the answer
corpus (`tradecore.testing.corpus`, rule in docs/venues.md "The answer corpus"): the same
method and path (or an error any endpoint may answer), the same HTTP status, and a body whose
keys and value types are a subset of a documented example's, the venue's code equal. An
answer no entry documents fails the test that provoked it (at its teardown), naming the
answer and what no entry shows.
"""

from collections.abc import Iterator

import pytest

from tradecore.testing.corpus import Answer, undocumented
from tradecore.testing.loopback.server import LoopbackServer


@pytest.fixture(autouse=True)
def loopback_answers_are_documented() -> Iterator[None]:
    found: list[str] = []

    def observe(venue: str, answer: Answer) -> None:
        why = undocumented(venue, answer)
        if why is not None:
            found.append(f"{venue} {answer.method} {answer.path} {answer.status}: {why}")

    LoopbackServer.observers.append(observe)
    try:
        yield
    finally:
        LoopbackServer.observers.remove(observe)
    if found:
        listed = "\n  ".join(dict.fromkeys(found))
        pytest.fail(f"the loopback venue gave answers no documented one shows:\n  {listed}")
