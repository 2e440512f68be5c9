"""Use cases: the trading application, written against ports only."""
