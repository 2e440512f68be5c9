"""Alerts to a human: Telegram, a JSON webhook, a log-only alerter for paper mode, a fan-out."""

from tradecore.adapters.alerts.channels import TelegramChannel, WebhookChannel
from tradecore.adapters.alerts.gate import AlertGate, AlertPolicy, Verdict
from tradecore.adapters.alerts.http import FanOutAlerter, HttpAlerter, LogAlerter
from tradecore.adapters.alerts.queue import QueuedAlerter

__all__ = [
    "AlertGate",
    "AlertPolicy",
    "FanOutAlerter",
    "HttpAlerter",
    "LogAlerter",
    "QueuedAlerter",
    "TelegramChannel",
    "Verdict",
    "WebhookChannel",
]
