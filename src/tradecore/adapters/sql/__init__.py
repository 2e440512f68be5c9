"""SQL shared by the PostgreSQL and SQLite adapters: repositories written once over a small
executor interface, with per-dialect value codecs, and the migration runner."""
