"""`python -m runner report`: the post-run report (`tradecore.adapters.reporting.command`) of
one database, or of every account on a PostgreSQL server."""

from tradecore.adapters.reporting.command import run_report, run_report_accounts

__all__ = ["run_report", "run_report_accounts"]
