"""Reading an order back after the venue acknowledged it, until the venue proves its state.

Bybit's `/v5/order/create` answers `orderId` and `orderLinkId` only: "The ack of create
order request indicates that the request is successfully accepted. Please use websocket
order stream to confirm the order status" (bybit-exchange.github.io/docs/v5/order/create-order).
Its look-ups may not list the order at once: `/v5/order/realtime` ("Get Open & Closed
Orders") lists open orders by default (`openOnly=0`), by `orderId`/`orderLinkId` also the
recent 500 closed ones — but "After a server release or restart, filled, canceled, and
rejected orders of Unified account should only be queried through order history" — and
`/v5/order/history` ("Get Order History") says "As order creation/cancellation is
asynchronous, the data returned from this endpoint may delay"
(bybit-exchange.github.io/docs/v5/order/open-order, .../order/order-list).

So an acknowledged order is looked up, and looked up again after a growing pause on the
clock (virtual in tests), until the venue shows it in a proven state. Past the bound the
caller answers `Unknown` — never "refused", never "failed": the order may well exist, and
whoever resolves it later looks it up by its client id.
"""

from collections.abc import Awaitable, Callable

import attrs

from tradecore.domain.orders import Order, OrderType
from tradecore.ports.clock import Clock
from tradecore.ports.exchange import ExchangeUnavailable


@attrs.frozen(kw_only=True)
class ReadBack:
    """How long an acknowledged order is looked for: `looks` look-ups, the first at once,
    then after `first_pause` seconds, doubling up to `longest_pause` (5.75 s in all by
    default, on the clock)."""

    looks: int = 6
    first_pause: float = 0.25
    longest_pause: float = 2.0

    def pause(self, look: int) -> float:
        """The pause before look number `look` (0 is the first: none)."""
        if look <= 0:
            return 0.0
        return float(min(self.first_pause * 2 ** (look - 1), self.longest_pause))


def proven(order: Order) -> bool:
    """The venue shows the order's state for good enough to act on: a market order has ended
    (filled, cancelled or expired, with the quantity it filled); any other kind is listed
    (resting open, or ended)."""
    return order.type is not OrderType.MARKET or not order.is_open


async def read_back(
    find: Callable[[], Awaitable[Order | None]], *, clock: Clock, policy: ReadBack
) -> Order | None:
    """The order once `find` shows it proven, or None when `policy`'s looks ran out first.

    A look the venue cannot answer (`ExchangeUnavailable`) counts as a look that found
    nothing: the next one comes after the pause."""
    for look in range(policy.looks):
        pause = policy.pause(look)
        if pause:
            await clock.sleep(pause)
        try:
            found = await find()
        except ExchangeUnavailable:
            continue
        if found is not None and proven(found):
            return found
    return None


class NotProven(Exception):
    """The venue acknowledged the command, but its look-ups did not show the order's state
    within the read-back's bound: the command's outcome is `Unknown`."""
