"""Where signals come from (a websocket, a replay file)."""

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from tradecore.domain.signals import Signal


@runtime_checkable
class SignalSource(Protocol):
    def signals(self) -> AsyncIterator[Signal]:
        """Validated signals as they arrive; rejects are reported as events, not raised."""
        ...

    async def close(self) -> None: ...
