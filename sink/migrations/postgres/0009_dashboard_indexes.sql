-- The dashboards' access paths into the roll-ups: one level (every
-- province, every county), one period type, a range of periods, all
-- regions at once; one period type of every program. The cells' primary
-- keys lead with the owner (region_code, program_id), so such a read
-- scanned every cell. With these indexes the views read the level's or the
-- period type's cells only: the filters reach them through the views'
-- GROUP BY (region_level, period_type and period_start are grouping
-- columns). The values are not in them, so the fold's updates of stored
-- cells stay HOT; a new cell costs one more index entry (docs/performance.md,
-- "Twentieth session": the dashboard's province query 91-112 ms -> 4-5 ms
-- on 200,000 events; a backfill's fold -5 % to +8 %, within the spread).
--
-- Not CONCURRENTLY (a migration runs in a transaction): on a large
-- existing table the build holds off the fold while it runs (2.4 s for
-- 1.81 M regional cells); batches only append deltas and readers read on, so
-- neither waits.
CREATE INDEX regional_cells_level
    ON outreach.regional_cells (region_level, period_type, period_start);
CREATE INDEX program_cells_period
    ON outreach.program_cells (period_type, period_start);
