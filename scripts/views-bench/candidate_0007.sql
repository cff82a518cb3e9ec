-- scripts/views-bench: migration 0007 as committed in 66e29bf (removed again in
-- a93fd5d), verbatim below this note; 00_create.sh applies it after 0006 when
-- sink/migrations/postgres holds no 0007.
-- The roll-up views read stored cells as they are (issue 27). Until now each
-- view grouped the union of every cell and every pending delta by key, so a
-- query whose filter missed the leading key aggregated the whole table,
-- even with nothing pending. Now a view is two disjoint parts:
--
--   1. the cells of keys that have no pending delta, as stored: a filter
--      on any column is a filter on the table (and reaches its indexes);
--   2. the keys that have pending deltas: the deltas summed per key, plus
--      the key's cell if there is one (an index look-up per pending key).
--
-- A key is in exactly one part: a pending delta puts it in the second,
-- which the first excludes (an anti-join on the pending keys). Both parts
-- read one snapshot, and the fold moves a delta into its cell in one
-- statement, so the totals are the same as before, during and after a
-- fold (ARCHITECTURE.md, "The read path"). Zero totals are left out, as
-- before. With nothing pending, part 2 is empty and part 1 costs what a
-- scan of the stored table costs.
--
-- mission_id may be NULL (the cells' key is UNIQUE NULLS NOT DISTINCT):
-- it is compared with IS NOT DISTINCT FROM, the other key columns with =,
-- so the anti-join still hashes on them and the look-ups use the index.

CREATE OR REPLACE VIEW outreach.regional_metrics AS
SELECT c.region_code, c.region_level, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.regional_cells c
WHERE c.value <> 0
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

CREATE OR REPLACE VIEW outreach.program_metrics AS
SELECT c.program_id, c.period_type, c.period_start, c.metric,
       trim_scale(c.value * 0.01) AS value, c.updated_at
FROM outreach.program_cells c
WHERE c.value <> 0
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

-- The scope filter of 0005, in both parts; the view stays a security
-- barrier (0006). The union is wrapped in a subquery: Postgres flattens a
-- view whose body is a bare UNION ALL into its parts, whatever its
-- security_barrier, and would then push a caller's leaky filter below the
-- scope filters (tests/hostile_analyst.rs caught it). A view whose body is
-- a SELECT over the union stays one barrier; its leakproof key filters
-- still go through it, and into both parts.
CREATE OR REPLACE VIEW outreach.daily_metrics WITH (security_barrier = true) AS
SELECT * FROM (
SELECT c.day, c.institution_id, c.program_id, c.mission_id, c.facility_id, c.region_code,
       c.metric, c.dims, trim_scale(c.value * 0.01) AS value
FROM outreach.daily_cells c
WHERE c.value <> 0
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
