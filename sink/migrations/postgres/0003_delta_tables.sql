-- The write path built for volume: batches append signed deltas, a
-- compaction folds them into stored cells, and analysts read the contract's
-- three roll-up tables as views over both (ARCHITECTURE.md, "The write
-- path"). Values are integer hundredths inside and numeric on the way out
-- (trim_scale: 2 and 12.5, not 2.00 and 12.50).
--
-- Text keys use the "C" collation (byte order): the keys are codes and
-- identifiers, and comparing bytes instead of calling the locale's strcoll
-- made the fold's sort and index inserts about twice as fast here. The
-- ledger's keys get the same below.
--
-- Per aggregate table:
--   *_cells   one row per key, folded totals; only compaction and rebuild
--             write it. fillfactor 70 leaves room on each page so the
--             update of a value (not indexed) is a HOT update.
--   *_deltas  append-only, no index: a batch COPYs its deltas here in the
--             same transaction as its offsets. Compaction moves them out.
--   the view  the contract's name and columns: cells plus pending deltas,
--             summed per key, zero totals left out. A filter on key columns
--             reaches the cells' index and the (small) deltas alike. It
--             reads the tables with its owner's rights: analysts are granted
--             the view, never the tables behind it.

DROP VIEW outreach.program_summary;
DROP VIEW outreach.region_summary;
DROP VIEW outreach.surgery_roles;

ALTER TABLE outreach.activity_facts
    ALTER COLUMN institution_id TYPE text COLLATE "C",
    ALTER COLUMN record_id TYPE text COLLATE "C";
ALTER TABLE outreach.mission_facts
    ALTER COLUMN institution_id TYPE text COLLATE "C",
    ALTER COLUMN mission_id TYPE text COLLATE "C";

-- daily_metrics ----------------------------------------------------------------

CREATE TABLE outreach.daily_cells (
    day            date NOT NULL,
    institution_id text COLLATE "C" NOT NULL,
    program_id     text COLLATE "C" NOT NULL,
    mission_id     text COLLATE "C",
    facility_id    text COLLATE "C" NOT NULL,
    region_code    text COLLATE "C" NOT NULL,
    metric         text COLLATE "C" NOT NULL,
    dims           jsonb NOT NULL,
    value          bigint NOT NULL, -- hundredths
    CONSTRAINT daily_cells_key UNIQUE NULLS NOT DISTINCT
        (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims)
) WITH (fillfactor = 70);
CREATE INDEX daily_cells_region ON outreach.daily_cells (region_code, day);
CREATE INDEX daily_cells_program ON outreach.daily_cells (program_id, day);

CREATE TABLE outreach.daily_deltas (
    day            date NOT NULL,
    institution_id text COLLATE "C" NOT NULL,
    program_id     text COLLATE "C" NOT NULL,
    mission_id     text COLLATE "C",
    facility_id    text COLLATE "C" NOT NULL,
    region_code    text COLLATE "C" NOT NULL,
    metric         text COLLATE "C" NOT NULL,
    dims           jsonb NOT NULL,
    value          bigint NOT NULL
);

INSERT INTO outreach.daily_cells
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims,
       (value * 100)::bigint
FROM outreach.daily_metrics WHERE value <> 0;
DROP TABLE outreach.daily_metrics;

CREATE VIEW outreach.daily_metrics AS
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims,
       trim_scale(sum(value) * 0.01) AS value
FROM (SELECT * FROM outreach.daily_cells UNION ALL SELECT * FROM outreach.daily_deltas) t
-- The institution scope that a row-level security policy applied to the
-- table before: a login listed in analyst_scope sees its institutions'
-- rows only (session_user, so SET ROLE does not widen it). Here rather than
-- in a policy because Postgres refuses COPY into a table with row-level
-- security, and the batches COPY their deltas.
WHERE NOT EXISTS (SELECT FROM outreach.analyst_scope s WHERE s.role_name = session_user)
   OR t.institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                           WHERE s.role_name = session_user)
GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims
HAVING sum(value) <> 0;

-- regional_metrics -------------------------------------------------------------

CREATE TABLE outreach.regional_cells (
    region_code  text COLLATE "C" NOT NULL,
    region_level text COLLATE "C" NOT NULL,
    period_type  text COLLATE "C" NOT NULL,
    period_start date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (region_code, period_type, period_start, metric)
) WITH (fillfactor = 70);

CREATE TABLE outreach.regional_deltas (
    region_code  text COLLATE "C" NOT NULL,
    region_level text COLLATE "C" NOT NULL,
    period_type  text COLLATE "C" NOT NULL,
    period_start date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO outreach.regional_cells
SELECT region_code, region_level, period_type, period_start, metric, (value * 100)::bigint, updated_at
FROM outreach.regional_metrics WHERE value <> 0;
DROP TABLE outreach.regional_metrics;

CREATE VIEW outreach.regional_metrics AS
SELECT region_code, region_level, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM (SELECT * FROM outreach.regional_cells UNION ALL SELECT * FROM outreach.regional_deltas) t
-- region_level follows from region_code; grouping on it lets a filter on it
-- reach both sides.
GROUP BY region_code, region_level, period_type, period_start, metric
HAVING sum(value) <> 0;

-- program_metrics --------------------------------------------------------------

CREATE TABLE outreach.program_cells (
    program_id   text COLLATE "C" NOT NULL,
    period_type  text COLLATE "C" NOT NULL,
    period_start date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (program_id, period_type, period_start, metric)
) WITH (fillfactor = 70);

CREATE TABLE outreach.program_deltas (
    program_id   text COLLATE "C" NOT NULL,
    period_type  text COLLATE "C" NOT NULL,
    period_start date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO outreach.program_cells
SELECT program_id, period_type, period_start, metric, (value * 100)::bigint, updated_at
FROM outreach.program_metrics WHERE value <> 0;
DROP TABLE outreach.program_metrics;

CREATE VIEW outreach.program_metrics AS
SELECT program_id, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM (SELECT * FROM outreach.program_cells UNION ALL SELECT * FROM outreach.program_deltas) t
GROUP BY program_id, period_type, period_start, metric
HAVING sum(value) <> 0;

-- The summary views of 0002, unchanged, over the new views -------------------

CREATE VIEW outreach.program_summary WITH (security_invoker = true) AS
SELECT
    m.program_id,
    p.name AS program_name,
    m.period_type,
    m.period_start,
    sum(m.value) FILTER (WHERE m.metric = 'missions_dispatched')   AS missions_dispatched,
    sum(m.value) FILTER (WHERE m.metric = 'missions_completed')    AS missions_completed,
    sum(m.value) FILTER (WHERE m.metric = 'experts_dispatched')    AS experts_dispatched,
    sum(m.value) FILTER (WHERE m.metric = 'expert_days')           AS expert_days,
    sum(m.value) FILTER (WHERE m.metric = 'outpatient_visits')     AS outpatient_visits,
    sum(m.value) FILTER (WHERE m.metric = 'surgeries')             AS surgeries,
    sum(m.value) FILTER (WHERE m.metric = 'staff_trained')         AS staff_trained,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_introduced') AS techniques_introduced,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_localized')  AS techniques_localized,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_localized')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'techniques_introduced'), 0)
        AS techniques_localized_per_introduced,
    sum(m.value) FILTER (WHERE m.metric = 'outpatient_visits')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'expert_days'), 0)
        AS outpatients_per_expert_day,
    sum(m.value) FILTER (WHERE m.metric = 'surgeries')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'missions_completed'), 0)
        AS surgeries_per_completed_mission
FROM outreach.program_metrics m
LEFT JOIN outreach.programs p USING (program_id)
GROUP BY m.program_id, p.name, m.period_type, m.period_start;

CREATE VIEW outreach.region_summary WITH (security_invoker = true) AS
SELECT
    m.region_code,
    r.name AS region_name,
    m.region_level,
    r.parent_code,
    m.period_type,
    m.period_start,
    sum(m.value) FILTER (WHERE m.metric = 'missions_dispatched')   AS missions_dispatched,
    sum(m.value) FILTER (WHERE m.metric = 'missions_completed')    AS missions_completed,
    sum(m.value) FILTER (WHERE m.metric = 'experts_dispatched')    AS experts_dispatched,
    sum(m.value) FILTER (WHERE m.metric = 'expert_days')           AS expert_days,
    sum(m.value) FILTER (WHERE m.metric = 'outpatient_visits')     AS outpatient_visits,
    sum(m.value) FILTER (WHERE m.metric = 'surgeries')             AS surgeries,
    sum(m.value) FILTER (WHERE m.metric = 'staff_trained')         AS staff_trained,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_introduced') AS techniques_introduced,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_localized')  AS techniques_localized,
    sum(m.value) FILTER (WHERE m.metric = 'techniques_localized')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'techniques_introduced'), 0)
        AS techniques_localized_per_introduced,
    sum(m.value) FILTER (WHERE m.metric = 'outpatient_visits')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'expert_days'), 0)
        AS outpatients_per_expert_day,
    sum(m.value) FILTER (WHERE m.metric = 'surgeries')
        / NULLIF(sum(m.value) FILTER (WHERE m.metric = 'missions_completed'), 0)
        AS surgeries_per_completed_mission
FROM outreach.regional_metrics m
JOIN outreach.regions r USING (region_code)
GROUP BY m.region_code, r.name, m.region_level, r.parent_code, m.period_type, m.period_start;

CREATE VIEW outreach.surgery_roles WITH (security_invoker = true) AS
SELECT
    program_id,
    region_code,
    date_trunc('month', day)::date AS month,
    sum(value) FILTER (WHERE dims->>'role' = 'performed')  AS performed,
    sum(value) FILTER (WHERE dims->>'role' = 'supervised') AS supervised,
    sum(value) FILTER (WHERE dims->>'role' = 'assisted')   AS assisted,
    sum(value) FILTER (WHERE dims->>'role' IN ('performed', 'supervised'))
        / NULLIF(sum(value) FILTER (WHERE dims->>'role' IN ('performed', 'supervised', 'assisted')), 0)
        AS performed_or_supervised_share
FROM outreach.daily_metrics
WHERE metric = 'surgeries'
GROUP BY program_id, region_code, date_trunc('month', day);
