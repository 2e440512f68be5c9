"""What the health endpoint, the metrics and the paper summary read: a tee on the event sink.

Every state change is already an event, so counting events as they pass on their way to the
journal gives the runner its figures without a hook in the application: positions opened and
closed, stop moves, trailing activations, errors by kind, the stream's state, latencies
between an operation's events. Nothing here decides anything.
"""

from collections import Counter, deque
from datetime import datetime

from tradecore.adapters.event_log import log_event
from tradecore.domain.events import Event, EventType, Severity
from tradecore.ports.events import EventSink

E = EventType
# A stop move is one `stop_loss_replaced` (the keeper's record of what the venue took); the
# trailing service's `trailing_stop_updated` for the same move is its reason, not a second move.
STOP_MOVES = frozenset({E.STOP_LOSS_REPLACED})
# (name, from, to): seconds between two events of one operation (one correlation id).
LATENCIES = (
    ("entry", E.POSITION_OPEN_STARTED, E.ENTRY_ORDER_FILLED),
    ("stop", E.ENTRY_ORDER_FILLED, E.STOP_LOSS_PLACED),
)
_SAMPLES = 10_000  # per latency; old samples go first
_OPEN_STARTS = 10_000


class Telemetry:
    """Counters fed by events; cheap enough for every event (a dict update or two)."""

    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: dict[str, deque[float]] = {
            name: deque(maxlen=_SAMPLES) for name, _, _ in LATENCIES
        }
        self.last_signal_at: datetime | None = None
        self.stream_connected: bool | None = None  # None: no websocket in this session
        self.marks_connected: bool | None = None  # the venue's mark-price stream
        self.last_venue_failure: datetime | None = None
        self.last_venue_read: datetime | None = None  # a pass that read the venue completed
        self.last_protection_check: datetime | None = None
        self.unprotected_last_check = 0
        self.rejections: Counter[str] = Counter()
        self.aged_exits = 0
        self.fates: Counter[str] = Counter()  # each received signal's one fate (issue 12)
        self._started: dict[tuple[str, str], datetime] = {}

    def observe(self, event: Event) -> None:
        kind = event.type
        self.by_type[kind.value] += 1
        fate = event.data.get("fate")
        if fate is not None:
            self.fates[str(fate)] += 1
        if event.severity >= Severity.ERROR:
            self.errors[kind.value] += 1
        if kind is E.SIGNAL_RECEIVED:
            self.last_signal_at = event.created_at
        elif kind is E.WEBSOCKET_CONNECTED or kind is E.WEBSOCKET_DISCONNECTED:
            connected = kind is E.WEBSOCKET_CONNECTED
            if event.data.get("stream") == "mark_price":  # the venue's price feed
                self.marks_connected = connected
            else:  # the signal service
                self.stream_connected = connected
        elif kind is E.RATE_LIMIT_HIT or (
            kind is E.HEALTH_CHECK_FAILED and event.data.get("component") == "venue"
        ):
            # Only the venue's own failures: a pass the database kept from running is the
            # database's (it has its own probe), never blamed on the venue.
            self.last_venue_failure = event.created_at
        elif kind is E.SYNCHRONIZATION_COMPLETED:
            if not event.data.get("skipped"):
                self.last_venue_read = event.created_at
            elif event.data.get("component") == "venue":
                self.last_venue_failure = event.created_at
        elif kind is E.PROTECTION_CHECK_COMPLETED:
            self.last_venue_read = event.created_at
            self.last_protection_check = event.created_at
            # Positions the pass left bare (story 4); older events only had "unprotected".
            bare = event.data.get("still_unprotected", event.data.get("unprotected", 0))
            self.unprotected_last_check = int(bare or 0)
        elif kind in (E.SIGNAL_FILTERED, E.RISK_LIMITS_EXCEEDED, E.ORDER_BELOW_MINIMUM):
            self.rejections[str(event.data.get("reason", kind.value))] += 1
        elif kind is E.POSITION_CLOSED:
            reason = str(event.data.get("reason", ""))
            # the aged manager's exit order filled ("aged exit order … filled"), or the aged
            # cap's close at market ("aged: loss cap"); no other market close
            self.aged_exits += reason.startswith("aged")
        elif kind is E.SIGNAL_EXECUTION_FAILED:
            self.rejections[f"open failed: {event.data.get('reason') or 'unknown'}"] += 1
        self._time(event)

    def count(self, *kinds: EventType) -> int:
        return sum(self.by_type[k.value] for k in kinds)

    @property
    def stop_moves(self) -> int:
        return sum(self.by_type[k.value] for k in STOP_MOVES)

    def _time(self, event: Event) -> None:
        if event.correlation_id is None:
            return
        for name, begin, end in LATENCIES:
            key = (name, event.correlation_id)
            if event.type is begin:
                if len(self._started) >= _OPEN_STARTS:
                    self._started.pop(next(iter(self._started)))
                self._started[key] = event.created_at
            elif event.type is end and key in self._started:
                began = self._started.pop(key)
                self.latencies[name].append((event.created_at - began).total_seconds())


class TeeSink:
    """An `EventSink` that lets telemetry see each event and logs it (one line per event, with
    its reason and ids: `tradecore.adapters.event_log`), then hands it to the journal."""

    def __init__(self, inner: EventSink, telemetry: Telemetry) -> None:
        self._inner = inner
        self.telemetry = telemetry

    def emit(self, event: Event) -> None:
        self.telemetry.observe(event)
        log_event(event)
        self._inner.emit(event)

    async def flush(self) -> None:
        await self._inner.flush()

    async def close(self) -> None:
        await self._inner.close()
