-- tradecore schema, version 4 (SQLite): the level a stop replacement moves to, so a restart
-- that cannot look the new stop up (the venue does not answer) still knows the last stop the
-- bot may have set, and never puts back a looser one.
ALTER TABLE operations ADD COLUMN target_price TEXT;
