"""commands.settle: the one place a command's answer becomes accepted, rejected or unknown."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

from tradecore.app.commands import Settling, settle
from tradecore.domain.model import OrderSide, Venue
from tradecore.domain.orders import Order, OrderStatus, OrderType
from tradecore.ports.exchange import Accepted, Outcome, Rejected, RejectReason, Unknown

ORDER = Order(
    venue=Venue.BINANCE,
    symbol="BTCUSDT",
    order_id="1",
    client_order_id="tc-op1-s0",
    side=OrderSide.SELL,
    type=OrderType.STOP_MARKET,
    quantity=Decimal("0.004"),
    status=OrderStatus.OPEN,
    trigger_price=Decimal("48500"),
)
FAST = Settling(attempts=3, lookups=2, retry_delay_seconds=0)


class Clock:
    def now(self) -> datetime:
        raise AssertionError("settle never reads the time")

    async def sleep(self, seconds: float) -> None:
        return None


def answers(*outcomes: Outcome) -> tuple[Callable[[], Awaitable[Outcome]], list[Outcome]]:
    sent: list[Outcome] = []

    async def send() -> Outcome:
        sent.append(outcomes[len(sent)])
        return sent[-1]

    return send, sent


def finds(*found: Order | None) -> Callable[[], Awaitable[Order | None]]:
    left = list(found)

    async def lookup() -> Order | None:
        return left.pop(0) if left else None

    return lookup


def rejected(reason: RejectReason, *, retryable: bool = False) -> Rejected:
    return Rejected(reason=reason, message=reason.value, retryable=retryable)


async def test_already_done_answers_are_looked_up_and_taken_as_accepted() -> None:
    for reason in (RejectReason.DUPLICATE_CLIENT_ID, RejectReason.NOT_MODIFIED):
        send, sent = answers(rejected(reason))
        outcome = await settle(send, finds(ORDER), clock=Clock(), settling=FAST)
        assert outcome == Accepted(order=ORDER) and len(sent) == 1


async def test_a_lost_answer_is_looked_up_then_sent_again_under_the_same_id() -> None:
    send, sent = answers(Unknown(message="lost"), rejected(RejectReason.DUPLICATE_CLIENT_ID))
    outcome = await settle(send, finds(None, ORDER), clock=Clock(), settling=FAST)
    assert outcome == Accepted(order=ORDER) and len(sent) == 2


async def test_a_market_order_is_never_sent_again_after_an_unresolved_unknown() -> None:
    send, sent = answers(Unknown(message="lost"), Accepted(order=ORDER))
    outcome = await settle(
        send, finds(None, None), clock=Clock(), settling=FAST, resend_unknown=False
    )
    assert isinstance(outcome, Unknown) and len(sent) == 1


async def test_retryable_rejections_are_retried_and_others_returned_at_once() -> None:
    limited = rejected(RejectReason.RATE_LIMITED, retryable=True)
    send, sent = answers(limited, limited, Accepted(order=ORDER))
    retries: list[int] = []
    outcome = await settle(
        send, finds(), clock=Clock(), settling=FAST, on_retry=lambda _, n: retries.append(n)
    )
    assert outcome == Accepted(order=ORDER) and retries == [0, 1]

    refused = rejected(RejectReason.WOULD_TRIGGER_IMMEDIATELY)
    send, sent = answers(refused, Accepted(order=ORDER))
    assert await settle(send, finds(), clock=Clock(), settling=FAST) == refused
    assert len(sent) == 1


async def test_already_done_but_never_found_is_unknown_not_a_failure() -> None:
    duplicate = rejected(RejectReason.DUPLICATE_CLIENT_ID)
    send, sent = answers(duplicate, duplicate, duplicate)
    outcome = await settle(send, finds(), clock=Clock(), settling=FAST)
    assert isinstance(outcome, Unknown) and len(sent) == 3
