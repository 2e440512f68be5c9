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


@runtime_checkable
class OperatorQueries(Protocol):
    async def answer(self, command: str) -> str:
        """The reply to an operator's read-only command (`/status`, `/positions`, `/pnl`,
        `/health`); the list of commands for anything else. Never raises: a source that
        cannot be read is said so in the reply."""
        ...
