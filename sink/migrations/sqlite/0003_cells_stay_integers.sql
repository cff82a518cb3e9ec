-- A cell's value is an integer of hundredths. SQLite turns an integer sum
-- that passes 2^63 - 1 into a REAL without a word (an upsert's
-- value + excluded.value), which would store an inexact total. These
-- triggers refuse it instead: the fold fails, says so, keeps the deltas
-- pending and tries again at the next tick (docs/operations.md, "A held
-- cell"). Postgres' bigint refuses on its own.
CREATE TRIGGER daily_cells_integer_insert BEFORE INSERT ON daily_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a daily_metrics cell would pass 2^63 - 1 hundredths'); END;
CREATE TRIGGER daily_cells_integer_update BEFORE UPDATE OF value ON daily_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a daily_metrics cell would pass 2^63 - 1 hundredths'); END;
CREATE TRIGGER regional_cells_integer_insert BEFORE INSERT ON regional_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a regional_metrics cell would pass 2^63 - 1 hundredths'); END;
CREATE TRIGGER regional_cells_integer_update BEFORE UPDATE OF value ON regional_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a regional_metrics cell would pass 2^63 - 1 hundredths'); END;
CREATE TRIGGER program_cells_integer_insert BEFORE INSERT ON program_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a program_metrics cell would pass 2^63 - 1 hundredths'); END;
CREATE TRIGGER program_cells_integer_update BEFORE UPDATE OF value ON program_cells
WHEN typeof(NEW.value) <> 'integer'
BEGIN SELECT RAISE(ABORT, 'integer overflow: a program_metrics cell would pass 2^63 - 1 hundredths'); END;
