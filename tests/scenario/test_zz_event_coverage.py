"""Every event type of the catalogue is emitted by at least one scenario.

Runs last (file order) and reads what every scenario's sink saw in this session. It only
judges a run of the whole scenario suite; a partial run (-k, one file) is skipped.
"""

from pathlib import Path

import pytest

from tradecore.domain.events import EventType

from .harness import EMITTED

# Emitted by adapters outside the application, and proven by their own suites.
ADAPTER_EVENTS = {
    EventType.WEBSOCKET_CONNECTED: "tests/unit/test_signal_client.py",
    EventType.WEBSOCKET_DISCONNECTED: "tests/unit/test_signal_client.py",
    EventType.DATABASE_UNAVAILABLE: "tests/contract/test_persistence_contract.py",
    EventType.DATABASE_RESTORED: "tests/contract/test_persistence_contract.py",
    EventType.JOURNAL_SPOOL_CORRUPT: "tests/contract/test_persistence_contract.py",
    EventType.ALERT_DELIVERY_FAILED: "tests/unit/test_alerts.py",
    EventType.OPERATOR_MESSAGE_IGNORED: "tests/unit/test_telegram.py",
    EventType.VENUE_FACT_CHECKED: "tests/crossprocess/test_venue_check.py",
    EventType.VENUE_CHECK_COMPLETED: "tests/crossprocess/test_venue_check.py",
}


def test_every_event_type_is_emitted_by_some_scenario(request: pytest.FixtureRequest) -> None:
    here = Path(__file__).parent
    suite = {p.name for p in here.glob("test_*.py")} - {Path(__file__).name}
    ran = {Path(str(item.fspath)).name for item in request.session.items}
    if not suite <= ran:
        pytest.skip("the coverage check judges a run of the whole scenario suite")
    missing = sorted(t.value for t in EventType if t not in EMITTED and t not in ADAPTER_EVENTS)
    assert missing == [], f"no scenario emits: {missing}"
