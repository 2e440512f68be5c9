"""One frame or line in, a validated signal or a `signal_rejected` event out."""

from typing import Any

from tradecore.adapters.signals.codec import MAX_FRAME_BYTES, Undecodable, decode_frame, preview
from tradecore.adapters.signals.journal import SignalJournal
from tradecore.domain.signals import Signal
from tradecore.domain.waves import SignalLimits, parse_signal


class Intake:
    """Decodes (the adapter's job), then validates with `domain.waves.parse_signal`.

    Never raises for input: whatever is refused becomes exactly one `signal_rejected` event.
    """

    def __init__(
        self,
        *,
        journal: SignalJournal,
        limits: SignalLimits | None = None,
        max_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self._journal = journal
        self._limits = limits or SignalLimits()
        self._max_bytes = max_bytes

    def take(self, payload: str | bytes, **where: Any) -> Signal | None:
        """The signal in `payload`, or None after recording why it was refused."""
        decoded = decode_frame(payload, max_bytes=self._max_bytes)
        if isinstance(decoded, Undecodable):
            self._journal.rejected(decoded.reason, decoded.detail, decoded.raw, **where)
            return None
        outcome = parse_signal(decoded, self._limits)
        if isinstance(outcome, Signal):
            return outcome
        self._journal.rejected(
            outcome.reason,
            outcome.detail,
            preview(payload),
            field=outcome.field,
            signal_id=outcome.signal_id,
            **where,
        )
        return None
