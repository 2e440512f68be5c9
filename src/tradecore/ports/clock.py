"""Time and identity: a clock (virtual in tests and paper) and an id generator."""

import uuid
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (virtual clocks advance instead of waiting)."""
        ...


@runtime_checkable
class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A short unique id usable inside a client order id (<= 16 chars, [A-Za-z0-9])."""
        ...

    def new_uuid(self) -> uuid.UUID: ...
