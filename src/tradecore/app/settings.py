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
