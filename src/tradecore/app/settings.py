"""Every tunable of the application, with the SPEC defaults, in one frozen value.

The runner's configuration file is structured into this (cattrs); tests build it directly.
"""

from decimal import Decimal

import attrs

from tradecore.domain.aged import AgedParams
from tradecore.domain.reconcile import ReconcileParams
from tradecore.domain.sizing import SizingParams
from tradecore.domain.stops import StopParams
from tradecore.domain.trailing import TrailingParams
from tradecore.ports.exchange import Capabilities

from .protection import ProtectionSettings
from .stop_keeper import KeeperSettings
from .zombies import ZombieSettings


@attrs.frozen(kw_only=True)
class WaveSettings:
    max_trades_per_wave: int = 5
    reserve_percent: Decimal = Decimal(50)
    monitoring_window_seconds: float = 240
    poll_seconds: float = 5  # how often the window looks for the wave's signals
    min_score_week: Decimal = Decimal(0)
    min_score_month: Decimal = Decimal(0)
    stop_list: frozenset[str] = frozenset()


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
