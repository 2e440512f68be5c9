-- tradecore schema, version 3 (SQLite): who claimed a wave (the wave processor of one
-- process), so a claim whose answer was lost after its commit is known as its own when the
-- check is tried again, not taken for another session's.
ALTER TABLE processed_waves ADD COLUMN claimed_by TEXT;
