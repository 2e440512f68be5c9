-- tradecore schema, version 2 (SQLite): a closed position's fees and funding, from the
-- venue's own fills and funding payments (realized_pnl = price move - fees + funding).
-- Money as exact decimal text, like every other amount in this schema.
ALTER TABLE positions ADD COLUMN fees TEXT;
ALTER TABLE positions ADD COLUMN funding TEXT;
