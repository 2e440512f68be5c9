"""Deduplication and rate limiting of alerts: pure bookkeeping over times given by the caller.

Rules (docs/operations.md, "Alerts"):

- An alert whose key was *delivered* less than `dedupe_seconds` ago is a duplicate and is not
  sent again. A failed delivery does not count, so the next attempt goes out.
- At most `per_minute` alerts are sent in any 60-second window. The excess is dropped and
  counted; the count rides on the next alert that goes out ("N more alerts were suppressed").
- CRITICAL alerts skip the rate limit (never the deduplication): a failed rollback must reach
  a human even in a storm of lesser alerts.
"""

from collections import deque
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from tradecore.domain.events import Severity


@attrs.frozen(kw_only=True)
class AlertPolicy:
    dedupe_seconds: float = 300.0
    per_minute: int = 20

    def __attrs_post_init__(self) -> None:
        if self.dedupe_seconds < 0 or self.per_minute < 1:
            raise ValueError("dedupe_seconds must be >= 0 and per_minute >= 1")


class Verdict(StrEnum):
    SEND = "send"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"


_MINUTE = timedelta(seconds=60)


class AlertGate:
    """Decides whether an alert goes out now; remembers what went out and what was dropped."""

    def __init__(self, policy: AlertPolicy | None = None) -> None:
        self.policy = policy or AlertPolicy()
        self._delivered: dict[str, datetime] = {}
        self._sent: deque[datetime] = deque()
        self._suppressed = 0

    def judge(self, key: str, severity: Severity, now: datetime) -> Verdict:
        last = self._delivered.get(key)
        if last is not None and now - last < timedelta(seconds=self.policy.dedupe_seconds):
            return Verdict.DUPLICATE
        while self._sent and now - self._sent[0] >= _MINUTE:
            self._sent.popleft()
        if severity < Severity.CRITICAL and len(self._sent) >= self.policy.per_minute:
            self._suppressed += 1
            return Verdict.RATE_LIMITED
        self._sent.append(now)
        return Verdict.SEND

    def delivered(self, key: str, now: datetime) -> None:
        self._delivered[key] = now
        horizon = now - timedelta(seconds=self.policy.dedupe_seconds)
        if len(self._delivered) > 1000:  # keep memory bounded on a long run
            self._delivered = {k: t for k, t in self._delivered.items() if t > horizon}

    def forget(self, key: str) -> None:
        """The delivery marked in advance failed: the next alert with `key` may go out."""
        self._delivered.pop(key, None)

    def take_suppressed(self) -> int:
        """How many alerts the rate limit dropped since the last call (then zero)."""
        count, self._suppressed = self._suppressed, 0
        return count

    def give_back_suppressed(self, count: int) -> None:
        """The summary could not be delivered: carry the count to the next alert."""
        self._suppressed += count
