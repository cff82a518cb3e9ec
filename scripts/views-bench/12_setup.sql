-- After ../barrier-bench/10_fill.sql, once: the bench controls the deltas' statistics itself
-- (autovacuum off on the three *_deltas tables: an autoanalyze between two
-- states would change plans behind the measurement's back), a few stored
-- cells brought to 0 (the fold keeps a cell whose total became 0; the views
-- must leave it out), then everything pending folded (20_fold.sql).
\set ON_ERROR_STOP 1
ALTER TABLE outreach.daily_deltas SET (autovacuum_enabled = false);
ALTER TABLE outreach.regional_deltas SET (autovacuum_enabled = false);
ALTER TABLE outreach.program_deltas SET (autovacuum_enabled = false);

INSERT INTO outreach.daily_deltas
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, -value
FROM outreach.daily_cells
WHERE abs(hashtext(day::text || institution_id || facility_id || metric || dims::text)) % 997 = 5;
INSERT INTO outreach.regional_deltas
SELECT region_code, region_level, period_start, metric, -value, '2026-12-05 09:00+00'
FROM outreach.regional_cells
WHERE period_type = 'day' AND abs(hashtext(region_code || period_start::text || metric)) % 997 = 5;
INSERT INTO outreach.program_deltas
SELECT program_id, period_start, metric, -value, '2026-12-05 09:00+00'
FROM outreach.program_cells
WHERE period_type = 'day' AND abs(hashtext(program_id || period_start::text || metric)) % 97 = 5;
\ir 20_fold.sql
SELECT 'daily' AS cells, count(*) FILTER (WHERE value = 0) AS zero FROM outreach.daily_cells
UNION ALL SELECT 'regional', count(*) FILTER (WHERE value = 0) FROM outreach.regional_cells
UNION ALL SELECT 'program', count(*) FILTER (WHERE value = 0) FROM outreach.program_cells;
VACUUM ANALYZE outreach.daily_cells, outreach.regional_cells, outreach.program_cells;
