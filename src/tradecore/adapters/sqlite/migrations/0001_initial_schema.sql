-- tradecore schema, version 1 (SQLite dialect of postgres/migrations/0001).
-- Money is TEXT holding the exact Decimal string (SQLite's NUMERIC affinity would turn it into
-- a float); time is TEXT in UTC, 'YYYY-MM-DDTHH:MM:SS.ffffff+00:00' (sorts as time); JSON is
-- TEXT. Foreign keys are DEFERRABLE INITIALLY DEFERRED and need PRAGMA foreign_keys=ON (the
-- adapter sets it). The events table has no foreign keys on purpose.

CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    checksum    TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);

CREATE TABLE positions (
    id                  TEXT PRIMARY KEY,
    exchange            TEXT NOT NULL,
    symbol              TEXT NOT NULL,
    side                TEXT NOT NULL CHECK (side IN ('long', 'short')),
    state               TEXT NOT NULL,
    requested_quantity  TEXT NOT NULL,
    quantity            TEXT NOT NULL DEFAULT '0',
    entry_price         TEXT,
    stop_price          TEXT,
    stop_order_id       TEXT,
    stop_owner          TEXT,
    signal_id           TEXT,
    wave                TEXT,
    created_at          TEXT NOT NULL,
    opened_at           TEXT,
    closed_at           TEXT,
    exit_price          TEXT,
    realized_pnl        TEXT,
    close_reason        TEXT,
    adopted             INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL DEFAULT 0,
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now'))
) STRICT;
CREATE UNIQUE INDEX positions_one_open_per_symbol ON positions (exchange, symbol)
    WHERE state NOT IN ('closed', 'failed', 'rolled_back');
CREATE INDEX positions_exchange_symbol_state ON positions (exchange, symbol, state);
CREATE INDEX positions_state ON positions (state);

CREATE TABLE operations (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    exchange         TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    position_id      TEXT REFERENCES positions (id) DEFERRABLE INITIALLY DEFERRED,
    client_order_ids TEXT NOT NULL DEFAULT '[]',
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    outcome          TEXT
) STRICT;
CREATE INDEX operations_in_flight ON operations (started_at) WHERE finished_at IS NULL;
CREATE INDEX operations_position ON operations (position_id);

CREATE TABLE orders (
    exchange         TEXT NOT NULL,
    order_id         TEXT NOT NULL,
    client_order_id  TEXT,
    symbol           TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('entry', 'stop', 'exit', 'foreign')),
    side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    type             TEXT NOT NULL,
    status           TEXT NOT NULL,
    quantity         TEXT NOT NULL,
    filled           TEXT NOT NULL DEFAULT '0',
    price            TEXT,
    trigger_price    TEXT,
    average_price    TEXT,
    reduce_only      INTEGER NOT NULL DEFAULT 0,
    close_position   INTEGER NOT NULL DEFAULT 0,
    position_idx     INTEGER NOT NULL DEFAULT 0,
    position_id      TEXT REFERENCES positions (id) DEFERRABLE INITIALLY DEFERRED,
    created_at       TEXT,
    updated_at       TEXT,
    PRIMARY KEY (exchange, order_id)
) STRICT;
CREATE INDEX orders_position ON orders (position_id);
CREATE INDEX orders_client_order_id ON orders (client_order_id);

CREATE TABLE trailing_stops (
    position_id  TEXT PRIMARY KEY REFERENCES positions (id) ON DELETE CASCADE
                 DEFERRABLE INITIALLY DEFERRED,
    exchange     TEXT NOT NULL,
    symbol       TEXT NOT NULL,
    phase        TEXT NOT NULL,
    state        TEXT NOT NULL,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now'))
) STRICT;

CREATE TABLE processed_waves (
    wave          TEXT PRIMARY KEY,
    claimed_at    TEXT NOT NULL,
    completed_at  TEXT,
    summary       TEXT
) STRICT;

CREATE TABLE signals (
    id           TEXT PRIMARY KEY,
    symbol       TEXT NOT NULL,
    exchange     TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('long', 'short')),
    score_week   TEXT NOT NULL,
    score_month  TEXT NOT NULL,
    wave         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    received_at  TEXT NOT NULL
) STRICT;
CREATE INDEX signals_wave ON signals (wave);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    event_type      TEXT NOT NULL,
    event_data      TEXT NOT NULL DEFAULT '{}',
    correlation_id  TEXT,
    position_id     TEXT,
    order_id        TEXT,
    symbol          TEXT,
    exchange        TEXT,
    severity        TEXT NOT NULL
                    CHECK (severity IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    error_message   TEXT,
    stack_trace     TEXT,
    created_at      TEXT NOT NULL,
    recorded_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now'))
) STRICT;
CREATE INDEX events_created_at ON events (created_at);
CREATE INDEX events_position ON events (position_id, created_at) WHERE position_id IS NOT NULL;
CREATE INDEX events_symbol ON events (symbol, created_at) WHERE symbol IS NOT NULL;
CREATE INDEX events_type ON events (event_type, created_at);
CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_problems ON events (created_at)
    WHERE severity IN ('WARNING', 'ERROR', 'CRITICAL');

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL,
    severity    TEXT NOT NULL,
    title       TEXT NOT NULL,
    text        TEXT NOT NULL,
    delivered   INTEGER NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX alerts_created_at ON alerts (created_at);
CREATE INDEX alerts_key ON alerts (key, created_at);
