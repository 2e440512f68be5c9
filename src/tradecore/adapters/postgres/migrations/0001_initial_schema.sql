-- tradecore schema, version 1 (PostgreSQL).
-- Money is NUMERIC without a fixed scale (some contracts trade at 0.0000001); time is timestamptz.
-- Foreign keys between state tables are DEFERRABLE INITIALLY DEFERRED so one transaction may
-- write an operation before its position. The events table has no foreign keys on purpose:
-- an event must never fail to insert because the row it mentions is missing.

CREATE TABLE schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE positions (
    id                  text PRIMARY KEY,
    exchange            text NOT NULL,
    symbol              text NOT NULL,
    side                text NOT NULL CHECK (side IN ('long', 'short')),
    state               text NOT NULL,
    requested_quantity  numeric NOT NULL,
    quantity            numeric NOT NULL DEFAULT 0,
    entry_price         numeric,
    stop_price          numeric,
    stop_order_id       text,
    stop_owner          text,
    signal_id           text,
    wave                timestamptz,
    created_at          timestamptz NOT NULL,
    opened_at           timestamptz,
    closed_at           timestamptz,
    exit_price          numeric,
    realized_pnl        numeric,
    close_reason        text,
    adopted             boolean NOT NULL DEFAULT false,
    version             integer NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- One position not in a terminal state per (exchange, symbol): two signals for one symbol
-- cannot both open, whatever the timing.
CREATE UNIQUE INDEX positions_one_open_per_symbol ON positions (exchange, symbol)
    WHERE state NOT IN ('closed', 'failed', 'rolled_back');
CREATE INDEX positions_exchange_symbol_state ON positions (exchange, symbol, state);
CREATE INDEX positions_state ON positions (state);

CREATE TABLE operations (
    id               text PRIMARY KEY,
    kind             text NOT NULL,
    exchange         text NOT NULL,
    symbol           text NOT NULL,
    position_id      text REFERENCES positions (id) DEFERRABLE INITIALLY DEFERRED,
    client_order_ids jsonb NOT NULL DEFAULT '[]',
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    outcome          text
);
CREATE INDEX operations_in_flight ON operations (started_at) WHERE finished_at IS NULL;
CREATE INDEX operations_position ON operations (position_id);

CREATE TABLE orders (
    exchange         text NOT NULL,
    order_id         text NOT NULL,
    client_order_id  text,
    symbol           text NOT NULL,
    role             text NOT NULL CHECK (role IN ('entry', 'stop', 'exit', 'foreign')),
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    type             text NOT NULL,
    status           text NOT NULL,
    quantity         numeric NOT NULL,
    filled           numeric NOT NULL DEFAULT 0,
    price            numeric,
    trigger_price    numeric,
    average_price    numeric,
    reduce_only      boolean NOT NULL DEFAULT false,
    close_position   boolean NOT NULL DEFAULT false,
    position_idx     integer NOT NULL DEFAULT 0,
    position_id      text REFERENCES positions (id) DEFERRABLE INITIALLY DEFERRED,
    created_at       timestamptz,
    updated_at       timestamptz,
    PRIMARY KEY (exchange, order_id)
);
CREATE INDEX orders_position ON orders (position_id);
CREATE INDEX orders_client_order_id ON orders (client_order_id);

-- The trailing state is stored whole as JSON (cattrs-unstructured, Decimal as exact string) so
-- fields added to TrailingState later need no migration; the key columns are for queries.
CREATE TABLE trailing_stops (
    position_id  text PRIMARY KEY REFERENCES positions (id) ON DELETE CASCADE
                 DEFERRABLE INITIALLY DEFERRED,
    exchange     text NOT NULL,
    symbol       text NOT NULL,
    phase        text NOT NULL,
    state        jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE processed_waves (
    wave          timestamptz PRIMARY KEY,
    claimed_at    timestamptz NOT NULL,
    completed_at  timestamptz,
    summary       jsonb
);

CREATE TABLE signals (
    id           text PRIMARY KEY,
    symbol       text NOT NULL,
    exchange     text NOT NULL,
    side         text NOT NULL CHECK (side IN ('long', 'short')),
    score_week   numeric NOT NULL,
    score_month  numeric NOT NULL,
    wave         timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX signals_wave ON signals (wave);

CREATE TABLE events (
    -- insertion order (= emission order); deliberately not indexed: a unique index here
    -- costs a fifth of the journal's write rate, and no query needs it
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    id              uuid PRIMARY KEY,
    event_type      text NOT NULL,
    event_data      jsonb NOT NULL DEFAULT '{}',
    correlation_id  text,
    position_id     text,
    order_id        text,
    symbol          text,
    exchange        text,
    severity        text NOT NULL
                    CHECK (severity IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    error_message   text,
    stack_trace     text,
    created_at      timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_created_at ON events (created_at);
CREATE INDEX events_position ON events (position_id, created_at) WHERE position_id IS NOT NULL;
CREATE INDEX events_symbol ON events (symbol, created_at) WHERE symbol IS NOT NULL;
CREATE INDEX events_type ON events (event_type, created_at);
CREATE INDEX events_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_problems ON events (created_at)
    WHERE severity IN ('WARNING', 'ERROR', 'CRITICAL');

CREATE TABLE alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL,
    severity    text NOT NULL,
    title       text NOT NULL,
    text        text NOT NULL,
    delivered   boolean NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX alerts_created_at ON alerts (created_at);
CREATE INDEX alerts_key ON alerts (key, created_at);

-- Retention: delete events older than `keep`, in batches so it never holds long locks.
-- Run it from cron / pg_cron:  SELECT tradecore_purge_events(interval '90 days');
CREATE FUNCTION tradecore_purge_events(keep interval, batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    total   bigint := 0;
    deleted bigint;
BEGIN
    LOOP
        DELETE FROM events
        WHERE id IN (
            SELECT id FROM events
            WHERE created_at < now() - keep
            ORDER BY created_at
            LIMIT batch_size
        );
        GET DIAGNOSTICS deleted = ROW_COUNT;
        total := total + deleted;
        EXIT WHEN deleted < batch_size;
    END LOOP;
    RETURN total;
END;
$$;
