-- The analyst tables of the event contract (exactly its columns), and the
-- pipeline's internal ledger and offsets.
CREATE SCHEMA IF NOT EXISTS outreach;

-- Analyst tables ------------------------------------------------------------

CREATE TABLE outreach.regions (
    region_code text PRIMARY KEY,
    name        text NOT NULL,
    level       text NOT NULL CHECK (level IN ('country', 'province', 'prefecture', 'county')),
    parent_code text REFERENCES outreach.regions (region_code)
);

CREATE TABLE outreach.programs (
    program_id text PRIMARY KEY,
    name       text
);

CREATE TABLE outreach.missions (
    mission_id       text NOT NULL,
    institution_id   text NOT NULL,
    program_id       text NOT NULL,
    host_facility_id text NOT NULL,
    region_code      text NOT NULL,
    team_size        integer NOT NULL,
    specialties      text[] NOT NULL,
    start_date       date NOT NULL,
    planned_end_date date,
    end_date         date,
    status           text NOT NULL CHECK (status IN ('active', 'completed')),
    PRIMARY KEY (institution_id, mission_id)
);

CREATE TABLE outreach.daily_metrics (
    day            date NOT NULL,
    institution_id text NOT NULL,
    program_id     text NOT NULL,
    mission_id     text,
    facility_id    text NOT NULL,
    region_code    text NOT NULL,
    metric         text NOT NULL,
    dims           jsonb NOT NULL DEFAULT '{}',
    value          numeric NOT NULL,
    CONSTRAINT daily_metrics_cell UNIQUE NULLS NOT DISTINCT
        (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims)
);
CREATE INDEX daily_metrics_region ON outreach.daily_metrics (region_code, day);
CREATE INDEX daily_metrics_program ON outreach.daily_metrics (program_id, day);

CREATE TABLE outreach.regional_metrics (
    region_code  text NOT NULL,
    region_level text NOT NULL,
    period_type  text NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start date NOT NULL,
    metric       text NOT NULL,
    value        numeric NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (region_code, period_type, period_start, metric)
);

CREATE TABLE outreach.program_metrics (
    program_id   text NOT NULL,
    period_type  text NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start date NOT NULL,
    metric       text NOT NULL,
    value        numeric NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (program_id, period_type, period_start, metric)
);

CREATE TABLE outreach.quarantine (
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    "partition"  integer NOT NULL,
    "offset"     bigint NOT NULL,
    key          bytea,
    payload      bytea NOT NULL,
    error_code   text NOT NULL,
    error_detail text NOT NULL
);
CREATE UNIQUE INDEX quarantine_position ON outreach.quarantine (topic, "partition", "offset");
CREATE INDEX quarantine_error_code ON outreach.quarantine (error_code, received_at);

-- Internal: the ledger and the offsets ---------------------------------------

-- Where each partition resumes: the next offset to apply. Written in the same
-- transaction as the changes it covers, and compare-and-set, so a worker that
-- lost the partition can no longer write it.
CREATE TABLE outreach.consumer_offsets (
    topic       text NOT NULL,
    "partition" integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, "partition")
);

-- The winning revision of every activity fact.
CREATE TABLE outreach.activity_facts (
    institution_id text NOT NULL,
    record_id      text NOT NULL,
    revision       integer NOT NULL,
    event_id       text NOT NULL,
    program_id     text NOT NULL,
    mission_id     text,
    facility_id    text NOT NULL,
    region_code    text NOT NULL,
    day            date NOT NULL,
    metric         text NOT NULL,
    dims           text NOT NULL, -- canonical JSON text: the grouping key
    value          bigint NOT NULL, -- hundredths of the metric's unit
    PRIMARY KEY (institution_id, record_id)
);

-- The winning dispatch and completion of every mission; a completion may
-- wait here for its dispatch.
CREATE TABLE outreach.mission_facts (
    institution_id       text NOT NULL,
    mission_id           text NOT NULL,
    dispatch_time        timestamptz,
    dispatch_event_id    text,
    program_id           text,
    program_name         text,
    host_facility_id     text,
    host_facility_name   text,
    region_code          text,
    team_size            integer,
    specialties          text, -- JSON array
    start_date           date,
    planned_end_date     date,
    completion_time      timestamptz,
    completion_event_id  text,
    end_date             date,
    PRIMARY KEY (institution_id, mission_id)
);
