-- The obvious alternative to the streaming pipeline, for the benchmark: raw
-- events loaded into PostgreSQL, then the three roll-up tables rebuilt from
-- scratch with one GROUP BY each.
--
-- Input (filled before this runs, not created here):
--   outreach_alt.raw_activities  one row per activity event, (source, id) unique
--   outreach_alt.raw_missions    one row per dispatched/completed event
--   outreach.regions             the pipeline's region tree
-- Output, in outreach_alt: daily_metrics, regional_metrics, program_metrics,
-- equal cell for cell to the pipeline's views of the same names (zero cells
-- left out), with the same keys and indexes.
--
-- The semantics are the pipeline's (transform/src/plan/, contribution.rs
-- and rollup.rs, schemas/src/ledger.rs):
--   * an activity record (institution_id, record_id) counts its winning
--     revision only, the highest (revision, event id), and a winner of
--     value 0 (a withdrawal) counts nothing
--   * a mission (institution_id, mission_id) counts its winning dispatch, the
--     latest (time, event id), and its winning completion likewise, the
--     completion only when 0 <= end_date - start_date < 5 * 366 days
--   * event ids compare as Rust strings do, byte by byte: COLLATE "C"
-- Values are summed as integer hundredths and written as numeric units
-- (hundredths * 0.01), as the pipeline's views do.
--
-- Plain SQL statements only, each ending with a semicolon at the end of a
-- line (and no comment line ends with one), so a program can split the file
-- there and run it statement by statement.

-- Memory for the hash aggregations (the roll-ups group millions of rows).
-- A session setting: it holds for the statements below when they run on one
-- connection.
SET work_mem = '256MB';

DROP TABLE IF EXISTS outreach_alt.daily_metrics;
DROP TABLE IF EXISTS outreach_alt.regional_metrics;
DROP TABLE IF EXISTS outreach_alt.program_metrics;

-- daily_metrics: every winning fact's cells, summed per cell -----------------

CREATE TABLE outreach_alt.daily_metrics AS
WITH activity AS (
    SELECT DISTINCT ON (institution_id COLLATE "C", record_id COLLATE "C")
           day, institution_id, program_id, mission_id, facility_id, region_code,
           metric, dims, value
    FROM outreach_alt.raw_activities
    ORDER BY institution_id COLLATE "C", record_id COLLATE "C", revision DESC,
             id COLLATE "C" DESC
),
dispatch AS (
    SELECT DISTINCT ON (institution_id COLLATE "C", mission_id COLLATE "C")
           institution_id, mission_id, program_id, host_facility_id, region_code,
           team_size::bigint AS team_size, start_date
    FROM outreach_alt.raw_missions
    WHERE kind = 'dispatched'
    ORDER BY institution_id COLLATE "C", mission_id COLLATE "C", time DESC,
             id COLLATE "C" DESC
),
completion AS (
    SELECT DISTINCT ON (institution_id COLLATE "C", mission_id COLLATE "C")
           institution_id, mission_id, end_date
    FROM outreach_alt.raw_missions
    WHERE kind = 'completed'
    ORDER BY institution_id COLLATE "C", mission_id COLLATE "C", time DESC,
             id COLLATE "C" DESC
),
mission AS (
    SELECT d.*,
           CASE WHEN c.end_date - d.start_date >= 0
                 AND c.end_date - d.start_date < 5 * 366
                THEN c.end_date END AS end_date
    FROM dispatch d
    LEFT JOIN completion c USING (institution_id, mission_id)
),
cells AS (
    SELECT day, institution_id, program_id, mission_id, facility_id, region_code,
           metric, dims, value
    FROM activity
    WHERE value <> 0
    UNION ALL
    SELECT x.day, m.institution_id, m.program_id, m.mission_id, m.host_facility_id,
           m.region_code, x.metric, '{}'::jsonb, x.value
    FROM mission m
    CROSS JOIN LATERAL (VALUES
        (m.start_date, 'missions_dispatched', 100::bigint),
        (m.start_date, 'experts_dispatched',  m.team_size * 100)
    ) x(day, metric, value)
    UNION ALL
    SELECT x.day, m.institution_id, m.program_id, m.mission_id, m.host_facility_id,
           m.region_code, x.metric, '{}'::jsonb, x.value
    FROM mission m
    CROSS JOIN LATERAL (
        SELECT m.end_date AS day, 'missions_completed' AS metric, 100::bigint AS value
        UNION ALL
        SELECT m.start_date + i, 'expert_days', m.team_size * 100
        FROM generate_series(0, m.end_date - m.start_date) i
    ) x
    WHERE m.end_date IS NOT NULL
)
SELECT day, institution_id, program_id, mission_id, facility_id, region_code,
       metric, dims, sum(value) * 0.01 AS value
FROM cells
GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code,
         metric, dims
HAVING sum(value) <> 0;

-- Statistics for the planner of the two roll-ups below.
ANALYZE outreach_alt.daily_metrics;

-- regional_metrics: each daily cell for its region and every ancestor, per
-- period type and period start ------------------------------------------------

CREATE TABLE outreach_alt.regional_metrics AS
WITH RECURSIVE closure (region_code, ancestor, ancestor_level) AS (
    SELECT region_code, region_code, level
    FROM outreach.regions
    UNION ALL
    SELECT c.region_code, p.region_code, p.level
    FROM closure c
    JOIN outreach.regions r ON r.region_code = c.ancestor
    JOIN outreach.regions p ON p.region_code = r.parent_code
)
SELECT c.ancestor AS region_code, c.ancestor_level AS region_level,
       p.period_type, p.period_start, d.metric,
       sum((d.value * 100)::bigint) * 0.01 AS value, now() AS updated_at
FROM outreach_alt.daily_metrics d
JOIN closure c ON c.region_code = d.region_code
CROSS JOIN LATERAL (VALUES
    ('day',     d.day),
    ('week',    date_trunc('week',    d.day::timestamp)::date),
    ('month',   date_trunc('month',   d.day::timestamp)::date),
    ('quarter', date_trunc('quarter', d.day::timestamp)::date),
    ('year',    date_trunc('year',    d.day::timestamp)::date)
) p(period_type, period_start)
GROUP BY c.ancestor, c.ancestor_level, p.period_type, p.period_start, d.metric
HAVING sum((d.value * 100)::bigint) <> 0;

-- program_metrics: each daily cell for its program, per period ---------------

CREATE TABLE outreach_alt.program_metrics AS
SELECT d.program_id, p.period_type, p.period_start, d.metric,
       sum((d.value * 100)::bigint) * 0.01 AS value, now() AS updated_at
FROM outreach_alt.daily_metrics d
CROSS JOIN LATERAL (VALUES
    ('day',     d.day),
    ('week',    date_trunc('week',    d.day::timestamp)::date),
    ('month',   date_trunc('month',   d.day::timestamp)::date),
    ('quarter', date_trunc('quarter', d.day::timestamp)::date),
    ('year',    date_trunc('year',    d.day::timestamp)::date)
) p(period_type, period_start)
GROUP BY d.program_id, p.period_type, p.period_start, d.metric
HAVING sum((d.value * 100)::bigint) <> 0;

-- Keys and indexes, built once the tables are filled --------------------------

ALTER TABLE outreach_alt.daily_metrics
    ALTER COLUMN day SET NOT NULL,
    ALTER COLUMN institution_id SET NOT NULL,
    ALTER COLUMN program_id SET NOT NULL,
    ALTER COLUMN facility_id SET NOT NULL,
    ALTER COLUMN region_code SET NOT NULL,
    ALTER COLUMN metric SET NOT NULL,
    ALTER COLUMN dims SET NOT NULL,
    ALTER COLUMN value SET NOT NULL,
    ADD CONSTRAINT daily_metrics_cell UNIQUE NULLS NOT DISTINCT
        (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims);
CREATE INDEX daily_metrics_region ON outreach_alt.daily_metrics (region_code, day);
CREATE INDEX daily_metrics_program ON outreach_alt.daily_metrics (program_id, day);

ALTER TABLE outreach_alt.regional_metrics
    ALTER COLUMN region_level SET NOT NULL,
    ALTER COLUMN value SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL,
    ADD PRIMARY KEY (region_code, period_type, period_start, metric);

ALTER TABLE outreach_alt.program_metrics
    ALTER COLUMN value SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL,
    ADD PRIMARY KEY (program_id, period_type, period_start, metric);
