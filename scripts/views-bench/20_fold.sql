-- Fold every pending delta into the cells: the statements of
-- sink/src/postgres/fold/sql.rs (Table::fold_sql, Range::All), one per table.
\set ON_ERROR_STOP 1
SET work_mem = '256MB';
WITH moved AS (DELETE FROM outreach.daily_deltas
               RETURNING day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, value),
     added AS (
   INSERT INTO outreach.daily_cells AS c (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, value)
   SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, sum(value)::bigint FROM moved
   GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims HAVING sum(value) <> 0
   ORDER BY day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims
   ON CONFLICT ON CONSTRAINT daily_cells_key DO UPDATE SET value = c.value + excluded.value
   RETURNING 1)
SELECT 'daily' AS fold, (SELECT count(*) FROM moved) AS deltas, (SELECT count(*) FROM added) AS cells;
WITH moved AS (DELETE FROM outreach.regional_deltas RETURNING region_code, day, metric, value, region_level, updated_at),
     added AS (
   INSERT INTO outreach.regional_cells AS c (region_code, period_type, period_start, metric, value, region_level, updated_at)
   SELECT region_code, period_type, period_start, metric, sum(value)::bigint, min(region_level), max(updated_at)
   FROM (SELECT region_code, day, metric, sum(value) AS value,
                min(region_level) AS region_level, max(updated_at) AS updated_at
         FROM moved GROUP BY region_code, day, metric) m
   CROSS JOIN LATERAL outreach.period_starts(m.day)
   GROUP BY region_code, period_type, period_start, metric HAVING sum(value) <> 0
   ORDER BY region_code, period_type, period_start, metric
   ON CONFLICT (region_code, period_type, period_start, metric) DO UPDATE SET value = c.value + excluded.value,
      region_level = c.region_level, updated_at = greatest(c.updated_at, excluded.updated_at)
   RETURNING 1)
SELECT 'regional' AS fold, (SELECT count(*) FROM moved) AS deltas, (SELECT count(*) FROM added) AS cells;
WITH moved AS (DELETE FROM outreach.program_deltas RETURNING program_id, day, metric, value, updated_at),
     added AS (
   INSERT INTO outreach.program_cells AS c (program_id, period_type, period_start, metric, value, updated_at)
   SELECT program_id, period_type, period_start, metric, sum(value)::bigint, max(updated_at)
   FROM (SELECT program_id, day, metric, sum(value) AS value, max(updated_at) AS updated_at
         FROM moved GROUP BY program_id, day, metric) m
   CROSS JOIN LATERAL outreach.period_starts(m.day)
   GROUP BY program_id, period_type, period_start, metric HAVING sum(value) <> 0
   ORDER BY program_id, period_type, period_start, metric
   ON CONFLICT (program_id, period_type, period_start, metric) DO UPDATE SET value = c.value + excluded.value,
      updated_at = greatest(c.updated_at, excluded.updated_at)
   RETURNING 1)
SELECT 'program' AS fold, (SELECT count(*) FROM moved) AS deltas, (SELECT count(*) FROM added) AS cells;
RESET work_mem;
