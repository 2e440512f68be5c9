"""`python -m runner monitor`: the live monitor (`tradecore.adapters.reporting.watch`) of one
database, or of every account on a PostgreSQL server."""

from tradecore.adapters.reporting.watch import watch as run_monitor
from tradecore.adapters.reporting.watch import watch_accounts as run_monitor_accounts

__all__ = ["run_monitor", "run_monitor_accounts"]
