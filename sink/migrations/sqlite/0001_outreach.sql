-- The embedded backend: the same tables, columns and views as Postgres'
-- schema `outreach` (migrations/postgres), in SQLite's types. SQLite has no
-- schemas, so the tables go unprefixed: `daily_metrics`, not
-- `outreach.daily_metrics`. Nor roles: access is the file's permissions.
--
-- Types: dates are ISO text (`2023-07-16`), times RFC 3339 text in UTC,
-- `dims` and `specialties` JSON text (`json_extract`), bytes BLOB. The
-- views need SQLite 3.30 (aggregate FILTER) in whatever tool reads them.
-- Metric values are REAL: each cell holds the nearest double to its exact
-- value, because every update adds whole hundredths
-- (round(old * 100) + round(delta * 100)) / 100 rather than accumulating
-- binary rounding errors.

-- Analyst tables ------------------------------------------------------------

CREATE TABLE regions (
    region_code TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('country', 'province', 'prefecture', 'county')),
    parent_code TEXT REFERENCES regions (region_code)
);

CREATE TABLE programs (
    program_id TEXT PRIMARY KEY,
    name       TEXT
);

CREATE TABLE missions (
    mission_id       TEXT NOT NULL,
    institution_id   TEXT NOT NULL,
    program_id       TEXT NOT NULL,
    host_facility_id TEXT NOT NULL,
    region_code      TEXT NOT NULL,
    team_size        INTEGER NOT NULL,
    specialties      TEXT NOT NULL, -- JSON array of strings
    start_date       TEXT NOT NULL,
    planned_end_date TEXT,
    end_date         TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'completed')),
    PRIMARY KEY (institution_id, mission_id)
);

CREATE TABLE daily_metrics (
    day            TEXT NOT NULL,
    institution_id TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    mission_id     TEXT,
    facility_id    TEXT NOT NULL,
    region_code    TEXT NOT NULL,
    metric         TEXT NOT NULL,
    dims           TEXT NOT NULL DEFAULT '{}', -- canonical JSON object
    value          REAL NOT NULL
);
-- One row per cell, a missing mission_id included (SQLite's UNIQUE would
-- let NULLs repeat; Postgres says NULLS NOT DISTINCT).
CREATE UNIQUE INDEX daily_metrics_cell ON daily_metrics
    (day, institution_id, program_id, ifnull(mission_id, ''), facility_id, region_code, metric, dims);
CREATE INDEX daily_metrics_region ON daily_metrics (region_code, day);
CREATE INDEX daily_metrics_program ON daily_metrics (program_id, day);

CREATE TABLE regional_metrics (
    region_code  TEXT NOT NULL,
    region_level TEXT NOT NULL,
    period_type  TEXT NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        REAL NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (region_code, period_type, period_start, metric)
);

CREATE TABLE program_metrics (
    program_id   TEXT NOT NULL,
    period_type  TEXT NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        REAL NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (program_id, period_type, period_start, metric)
);

CREATE TABLE quarantine (
    received_at  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    "partition"  INTEGER NOT NULL,
    "offset"     INTEGER NOT NULL,
    key          BLOB,
    payload      BLOB NOT NULL,
    error_code   TEXT NOT NULL,
    error_detail TEXT NOT NULL
);
CREATE UNIQUE INDEX quarantine_position ON quarantine (topic, "partition", "offset");
CREATE INDEX quarantine_error_code ON quarantine (error_code, received_at);

-- Internal: the ledger and the offsets ---------------------------------------

-- Where each partition resumes: the next offset to apply, written in the
-- same transaction as the changes it covers, compare-and-set.
CREATE TABLE consumer_offsets (
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (topic, "partition")
);

-- The winning revision of every activity fact.
CREATE TABLE activity_facts (
    institution_id TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    event_id       TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    mission_id     TEXT,
    facility_id    TEXT NOT NULL,
    region_code    TEXT NOT NULL,
    day            TEXT NOT NULL,
    metric         TEXT NOT NULL,
    dims           TEXT NOT NULL, -- canonical JSON text: the grouping key
    value          INTEGER NOT NULL, -- hundredths of the metric's unit
    PRIMARY KEY (institution_id, record_id)
);

-- The winning dispatch and completion of every mission; a completion may
-- wait here for its dispatch.
CREATE TABLE mission_facts (
    institution_id       TEXT NOT NULL,
    mission_id           TEXT NOT NULL,
    dispatch_time        TEXT,
    dispatch_event_id    TEXT,
    program_id           TEXT,
    program_name         TEXT,
    host_facility_id     TEXT,
    host_facility_name   TEXT,
    region_code          TEXT,
    team_size            INTEGER,
    specialties          TEXT, -- JSON array
    start_date           TEXT,
    planned_end_date     TEXT,
    completion_time      TEXT,
    completion_event_id  TEXT,
    end_date             TEXT,
    PRIMARY KEY (institution_id, mission_id)
);

-- Analyst views (as in Postgres: ratios of summed numerators and
-- denominators, NULL where the denominator is 0) -----------------------------

CREATE VIEW program_summary AS
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
FROM program_metrics m
LEFT JOIN programs p USING (program_id)
GROUP BY m.program_id, p.name, m.period_type, m.period_start;

CREATE VIEW region_summary AS
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
FROM regional_metrics m
JOIN regions r USING (region_code)
GROUP BY m.region_code, r.name, m.region_level, r.parent_code, m.period_type, m.period_start;

-- Surgeries by the visiting team's role, per program, region and month.
CREATE VIEW surgery_roles AS
SELECT
    program_id,
    region_code,
    strftime('%Y-%m-01', day) AS month,
    sum(value) FILTER (WHERE json_extract(dims, '$.role') = 'performed')  AS performed,
    sum(value) FILTER (WHERE json_extract(dims, '$.role') = 'supervised') AS supervised,
    sum(value) FILTER (WHERE json_extract(dims, '$.role') = 'assisted')   AS assisted,
    sum(value) FILTER (WHERE json_extract(dims, '$.role') IN ('performed', 'supervised'))
        / NULLIF(sum(value) FILTER (WHERE json_extract(dims, '$.role') IN ('performed', 'supervised', 'assisted')), 0)
        AS performed_or_supervised_share
FROM daily_metrics
WHERE metric = 'surgeries'
GROUP BY program_id, region_code, strftime('%Y-%m-01', day);
