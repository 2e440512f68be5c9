-- tradecore schema, version 2 (PostgreSQL): a closed position's fees and funding, from the
-- venue's own fills and funding payments (realized_pnl = price move - fees + funding).
ALTER TABLE positions ADD COLUMN fees numeric;
ALTER TABLE positions ADD COLUMN funding numeric;
