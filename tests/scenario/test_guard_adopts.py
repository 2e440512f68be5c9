"""A position opened by hand is protected by the next guard pass, not the next sync.

Found by `test_attack_schedule`: a person opened ETH by hand and the guard's pass, finding
it bare, left it alone ("the synchronizer adopts it first"), so it stayed without a stop
until the next synchronizer pass — 120 s by default, twice the guard interval a person's
removed stop waits at most (issue 10, item 2). The guard now has the synchronizer adopt
(and so protect) a bare position the journal does not know, in the same pass.
"""

from tradecore.domain.model import OrderSide

from .harness import App
from .invariants import journal_problems, stop_problems


async def test_a_position_opened_by_hand_is_protected_by_the_next_guard_pass(app: App) -> None:
    app.gaps_allowed = 1  # bare from the person's fill until the guard's pass
    app.venue.manual_order("ETHUSDT", OrderSide.SELL, "0.5")

    report = await app.run(app.guard.check())

    assert stop_problems(app.venue) == []  # one stop, for the full quantity
    assert await journal_problems(app.venue, app.store) == []  # adopted in the journal
    assert report.unprotected == 1  # counted as found bare
