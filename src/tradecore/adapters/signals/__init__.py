"""Signal sources: the websocket client of the signal service and a JSONL replay for paper runs."""

from tradecore.adapters.signals.replay import ReplaySignalSource
from tradecore.adapters.signals.websocket import WebSocketSettings, WebSocketSignalSource

__all__ = ["ReplaySignalSource", "WebSocketSettings", "WebSocketSignalSource"]
