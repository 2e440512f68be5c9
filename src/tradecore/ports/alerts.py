"""Alerts to a human (Telegram, a webhook)."""

from typing import Protocol, runtime_checkable

import attrs

from tradecore.domain.events import Severity


@attrs.frozen(kw_only=True)
class Alert:
    key: str  # alerts with the same key are deduplicated
    severity: Severity
    title: str
    text: str


@runtime_checkable
class Alerter(Protocol):
    async def send(self, alert: Alert) -> bool:
        """Deliver `alert`; False if it could not be (the caller records that as an event)."""
        ...
