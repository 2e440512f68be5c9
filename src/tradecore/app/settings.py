"""Every tunable of the application, with the SPEC defaults, in one frozen value.

The runner's configuration file is structured into this (cattrs); tests build it directly.
"""

from datetime import timedelta
from decimal import Decimal

import attrs

from tradecore.domain.aged import AgedParams
from tradecore.domain.errors import DomainError
from tradecore.domain.reconcile import ReconcileParams
from tradecore.domain.sizing import SizingParams
from tradecore.domain.stops import StopParams
from tradecore.domain.trailing import TrailingParams
from tradecore.domain.waves import WaveSchedule
from tradecore.ports.exchange import Capabilities

from .protection import ProtectionSettings
from .stop_keeper import KeeperSettings
from .zombies import ZombieSettings


@attrs.frozen(kw_only=True)
class WaveSettings:
    """Which signals are traded and when: the schedule defaults to the SPEC's quarter hours
    checked at minutes 5, 20, 35 and 50 with a 240 s window; a test run may shorten it to a
    wave every few seconds (docs/configuration.md)."""

    max_trades_per_wave: int = 5
    reserve_percent: Decimal = Decimal(50)
    length_seconds: float = 900  # a wave begins every this many seconds from midnight UTC
    check_offset_seconds: float = 300  # the check, this long after a wave begins
    monitoring_window_seconds: float = 240
    poll_seconds: float = 5  # how often the window looks for the wave's signals
    min_score_week: Decimal = Decimal(0)
    min_score_month: Decimal = Decimal(0)
    stop_list: frozenset[str] = frozenset()

    def __attrs_post_init__(self) -> None:
        length, window = self.length_seconds, self.monitoring_window_seconds
        try:
            self.schedule  # noqa: B018 - building it refuses a bad length or offset
        except DomainError as error:
            raise DomainError(
                f"length_seconds = {length:g}, check_offset_seconds = "
                f"{self.check_offset_seconds:g}: {error}"
            ) from None
        if not 0 <= window < length:
            raise DomainError(
                f"monitoring_window_seconds = {window:g} is not allowed; it must be 0 or more "
                f"and below length_seconds ({length:g}), or a wave would still be waiting for "
                "its signals when the next check comes"
            )
        if self.poll_seconds <= 0 or (window > 0 and self.poll_seconds > window):
            raise DomainError(
                f"poll_seconds = {self.poll_seconds:g} is not allowed; it must be above 0 and "
                f"at most monitoring_window_seconds ({window:g})"
            )

    @property
    def schedule(self) -> WaveSchedule:
        return WaveSchedule(
            length=timedelta(seconds=self.length_seconds),
            check_offset=timedelta(seconds=self.check_offset_seconds),
        )


@attrs.frozen(kw_only=True)
class AgedSettings:
    params: AgedParams = attrs.Factory(AgedParams)
    check_interval_seconds: float = 60
    region_skip_hours: float = 24


@attrs.frozen(kw_only=True)
class TradingSettings:
    sizing: SizingParams = attrs.Factory(SizingParams)
    stops: StopParams = attrs.Factory(StopParams)
    trailing: TrailingParams = attrs.Factory(TrailingParams)
    aged: AgedSettings = attrs.Factory(AgedSettings)
    waves: WaveSettings = attrs.Factory(WaveSettings)
    protection: ProtectionSettings = attrs.Factory(ProtectionSettings)
    zombies: ZombieSettings = attrs.Factory(ZombieSettings)
    reconcile: ReconcileParams = attrs.Factory(ReconcileParams)
    keeper: KeeperSettings = attrs.Factory(KeeperSettings)
    sync_interval_seconds: float = 120


def conditional_orders_problem(
    settings: TradingSettings, capabilities: Capabilities, venue: str
) -> str | None:
    """Why these settings cannot fit the venue's cap on open conditional orders, or None.

    At worst every open position holds its stop-loss and, while the stop moves on a venue
    that cannot move it in place, the new stop too (create, then cancel: the move needs a
    free slot). Aged exits are reduce-only limit orders, not conditional ones, on both
    venues, and entries are market orders, so neither counts. One position per symbol
    (one-way mode), so a cap per symbol only has to hold one position's stops.
    """
    cap = capabilities.max_conditional_orders
    if cap is None:
        return None
    per_position = 1 if capabilities.amend_stop or capabilities.position_stop else 2
    key = "trading.sizing.max_open_positions"
    positions = settings.sizing.max_open_positions
    if capabilities.conditional_cap_per_symbol:
        if per_position <= cap:
            return None
        return (
            f"{venue} allows {cap} open conditional orders per symbol and a position needs "
            f"{per_position} (its stop and the one replacing it); tradecore cannot trade there"
        )
    needed = positions * per_position
    if needed <= cap:
        return None
    return (
        f"{key} = {positions} cannot fit {venue}'s cap of {cap} open conditional orders per "
        f"account: at worst each position holds its stop plus the new one of a move in flight "
        f"(create, then cancel), {needed} in all; set {key} to {cap // per_position} or less"
    )
