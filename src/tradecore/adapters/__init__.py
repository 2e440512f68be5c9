"""Adapters: implementations of the ports (simulated venue, ccxt, PostgreSQL, SQLite, signals)."""
