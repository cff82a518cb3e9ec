-- A variant of the candidate 0007's views (candidate_0007.sql), for
-- comparison (schema v7g): part 1 split in two by a one-time test of
-- whether the deltas table holds any row.
--   1a  nothing pending in the table: the cells as stored, no anti-join
--       (NOT EXISTS (SELECT FROM deltas), uncorrelated: an InitPlan, the
--       arm's One-Time Filter);
--   1b  something pending: the cells anti-joined to the pending keys, as
--       in 0007 (skipped by its One-Time Filter when nothing is pending);
--   2   the pending keys summed with their cell, as in 0007.
-- Both tests read the query's snapshot, so exactly one of 1a, 1b returns
-- rows. daily_metrics keeps 0007's wrapping (one security barrier over the
-- whole union) and scope filter in every arm.
CREATE SCHEMA IF NOT EXISTS v7g;

CREATE OR REPLACE VIEW v7g.regional_metrics AS
SELECT c.region_code, c.region_level, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.regional_cells c
WHERE c.value <> 0
  AND NOT EXISTS (SELECT FROM outreach.regional_deltas)
UNION ALL
SELECT c.region_code, c.region_level, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.regional_cells c
WHERE c.value <> 0
  AND EXISTS (SELECT FROM outreach.regional_deltas)
  AND NOT EXISTS (
      SELECT FROM outreach.regional_deltas d
      CROSS JOIN LATERAL outreach.period_starts(d.day) p
      WHERE d.region_code = c.region_code AND d.metric = c.metric
        AND p.period_type = c.period_type AND p.period_start = c.period_start)
UNION ALL
SELECT k.region_code, k.region_level, k.period_type, k.period_start, k.metric,
       trim_scale((k.value + coalesce(c.value, 0)) * 0.01) AS value,
       greatest(k.updated_at, c.updated_at) AS updated_at
FROM (SELECT d.region_code, d.region_level, p.period_type, p.period_start, d.metric,
             sum(d.value) AS value, max(d.updated_at) AS updated_at
      FROM outreach.regional_deltas d CROSS JOIN LATERAL outreach.period_starts(d.day) p
      GROUP BY d.region_code, d.region_level, p.period_type, p.period_start, d.metric) k
LEFT JOIN outreach.regional_cells c
       ON c.region_code = k.region_code AND c.period_type = k.period_type
      AND c.period_start = k.period_start AND c.metric = k.metric
WHERE k.value + coalesce(c.value, 0) <> 0;

CREATE OR REPLACE VIEW v7g.program_metrics AS
SELECT c.program_id, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.program_cells c
WHERE c.value <> 0
  AND NOT EXISTS (SELECT FROM outreach.program_deltas)
UNION ALL
SELECT c.program_id, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.program_cells c
WHERE c.value <> 0
  AND EXISTS (SELECT FROM outreach.program_deltas)
  AND NOT EXISTS (
      SELECT FROM outreach.program_deltas d
      CROSS JOIN LATERAL outreach.period_starts(d.day) p
      WHERE d.program_id = c.program_id AND d.metric = c.metric
        AND p.period_type = c.period_type AND p.period_start = c.period_start)
UNION ALL
SELECT k.program_id, k.period_type, k.period_start, k.metric,
       trim_scale((k.value + coalesce(c.value, 0)) * 0.01) AS value,
       greatest(k.updated_at, c.updated_at) AS updated_at
FROM (SELECT d.program_id, p.period_type, p.period_start, d.metric,
             sum(d.value) AS value, max(d.updated_at) AS updated_at
      FROM outreach.program_deltas d CROSS JOIN LATERAL outreach.period_starts(d.day) p
      GROUP BY d.program_id, p.period_type, p.period_start, d.metric) k
LEFT JOIN outreach.program_cells c
       ON c.program_id = k.program_id AND c.period_type = k.period_type
      AND c.period_start = k.period_start AND c.metric = k.metric
WHERE k.value + coalesce(c.value, 0) <> 0;

CREATE OR REPLACE VIEW v7g.daily_metrics WITH (security_barrier = true) AS
SELECT * FROM (
SELECT c.day, c.institution_id, c.program_id, c.mission_id, c.facility_id, c.region_code,
       c.metric, c.dims, trim_scale(c.value * 0.01) AS value
FROM outreach.daily_cells c
WHERE c.value <> 0
  AND NOT EXISTS (SELECT FROM outreach.daily_deltas)
  AND ((SELECT outreach.analyst_sees_all())
       OR c.institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                               WHERE s.role_name = session_user))
UNION ALL
SELECT c.day, c.institution_id, c.program_id, c.mission_id, c.facility_id, c.region_code,
       c.metric, c.dims, trim_scale(c.value * 0.01) AS value
FROM outreach.daily_cells c
WHERE c.value <> 0
  AND EXISTS (SELECT FROM outreach.daily_deltas)
  AND NOT EXISTS (
      SELECT FROM outreach.daily_deltas d
      WHERE d.day = c.day AND d.institution_id = c.institution_id
        AND d.program_id = c.program_id AND d.mission_id IS NOT DISTINCT FROM c.mission_id
        AND d.facility_id = c.facility_id AND d.region_code = c.region_code
        AND d.metric = c.metric AND d.dims = c.dims)
  AND ((SELECT outreach.analyst_sees_all())
       OR c.institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                               WHERE s.role_name = session_user))
UNION ALL
SELECT k.day, k.institution_id, k.program_id, k.mission_id, k.facility_id, k.region_code,
       k.metric, k.dims, trim_scale((k.value + coalesce(c.value, 0)) * 0.01) AS value
FROM (SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric,
             dims, sum(value) AS value
      FROM outreach.daily_deltas
      WHERE (SELECT outreach.analyst_sees_all())
         OR institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                               WHERE s.role_name = session_user)
      GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code, metric,
               dims) k
LEFT JOIN outreach.daily_cells c
       ON c.day = k.day AND c.institution_id = k.institution_id
      AND c.program_id = k.program_id AND c.mission_id IS NOT DISTINCT FROM k.mission_id
      AND c.facility_id = k.facility_id AND c.region_code = k.region_code
      AND c.metric = k.metric AND c.dims = k.dims
WHERE k.value + coalesce(c.value, 0) <> 0
) AS parts;

GRANT USAGE ON SCHEMA v7g TO vb_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA v7g TO vb_analyst;
