-- The roll-ups become views over stored cells and pending deltas, as in
-- Postgres (migrations/postgres/0003 and 0004). A batch used to upsert
-- every period's cells in place: under a backlog about two thirds of its
-- time went to the `regional_metrics` upserts and to writing the pages they
-- dirtied all over the file (docs/performance.md). It now appends
-- day-grain deltas to tables without an index, which only fills pages at
-- their end; the compaction (sink/src/sqlite/compact.rs) folds the deltas
-- of many batches at once into the cells, spread to their periods, in key
-- order, so each page of the cells is written once per fold rather than
-- once per batch.
--
-- The names analysts query do not change: `daily_metrics`,
-- `regional_metrics` and `program_metrics` are views with the same columns,
-- summing the cells and the pending deltas, so every committed batch is
-- visible at once. They are written as cells LEFT JOIN pending UNION ALL
-- pending without a cell, not as one GROUP BY over both: SQLite pushes a
-- filter on the key (`WHERE region_code = ? AND period_type = ?`) into
-- that form and reaches the cells' primary key (1 ms), where a GROUP BY
-- over both scanned every cell (0.4 s on 1.1 M cells). The summary views
-- over them are untouched: SQLite binds a view's tables by name when it is
-- read.
--
-- Values are integer hundredths in cells and deltas (exact sums); the views
-- divide by 100.0, as the REAL columns held before. A cell whose sum is
-- zero is hidden, as in Postgres.

-- daily_metrics ---------------------------------------------------------------

-- mission_id is '' where the event names no mission (the key may not hold
-- NULL in a WITHOUT ROWID table); the view gives NULL back.
CREATE TABLE daily_cells (
    day            TEXT NOT NULL,
    institution_id TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    mission_id     TEXT NOT NULL,
    facility_id    TEXT NOT NULL,
    region_code    TEXT NOT NULL,
    metric         TEXT NOT NULL,
    dims           TEXT NOT NULL,
    value          INTEGER NOT NULL, -- hundredths
    PRIMARY KEY (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims)
) WITHOUT ROWID;
CREATE INDEX daily_cells_region ON daily_cells (region_code, day);
CREATE INDEX daily_cells_program ON daily_cells (program_id, day);
INSERT INTO daily_cells
SELECT day, institution_id, program_id, ifnull(mission_id, ''), facility_id, region_code, metric,
       dims, CAST(round(value * 100) AS INTEGER)
FROM daily_metrics WHERE true
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8;
DROP TABLE daily_metrics;

-- AUTOINCREMENT: an id is never reused, so the compaction can delete
-- exactly the deltas it summed (every later one has a higher id).
CREATE TABLE daily_deltas (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    day            TEXT NOT NULL,
    institution_id TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    mission_id     TEXT NOT NULL,
    facility_id    TEXT NOT NULL,
    region_code    TEXT NOT NULL,
    metric         TEXT NOT NULL,
    dims           TEXT NOT NULL,
    value          INTEGER NOT NULL -- hundredths
);

-- The pending deltas summed per cell.
CREATE VIEW daily_pending AS
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims,
       sum(value) AS value
FROM daily_deltas
GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims;

CREATE VIEW daily_metrics AS
SELECT c.day, c.institution_id, c.program_id, nullif(c.mission_id, '') AS mission_id,
       c.facility_id, c.region_code, c.metric, c.dims, (c.value + ifnull(p.value, 0)) / 100.0 AS value
FROM daily_cells c
LEFT JOIN daily_pending p
  ON p.day = c.day AND p.institution_id = c.institution_id AND p.program_id = c.program_id
 AND p.mission_id = c.mission_id AND p.facility_id = c.facility_id
 AND p.region_code = c.region_code AND p.metric = c.metric AND p.dims = c.dims
WHERE c.value + ifnull(p.value, 0) <> 0
UNION ALL
SELECT p.day, p.institution_id, p.program_id, nullif(p.mission_id, ''), p.facility_id,
       p.region_code, p.metric, p.dims, p.value / 100.0
FROM daily_pending p
WHERE p.value <> 0 AND NOT EXISTS (
    SELECT 1 FROM daily_cells c
    WHERE c.day = p.day AND c.institution_id = p.institution_id AND c.program_id = p.program_id
      AND c.mission_id = p.mission_id AND c.facility_id = p.facility_id
      AND c.region_code = p.region_code AND c.metric = p.metric AND c.dims = p.dims);

-- regional_metrics ------------------------------------------------------------

CREATE TABLE regional_cells (
    region_code  TEXT NOT NULL,
    region_level TEXT NOT NULL,
    period_type  TEXT NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        INTEGER NOT NULL, -- hundredths
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (region_code, period_type, period_start, metric)
) WITHOUT ROWID;
INSERT INTO regional_cells
SELECT region_code, region_level, period_type, period_start, metric,
       CAST(round(value * 100) AS INTEGER), updated_at
FROM regional_metrics WHERE true
ORDER BY 1, 3, 4, 5;
DROP TABLE regional_metrics;

CREATE TABLE regional_deltas (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    region_code  TEXT NOT NULL,
    region_level TEXT NOT NULL,
    day          TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        INTEGER NOT NULL, -- hundredths
    updated_at   TEXT NOT NULL
);

-- The pending deltas summed per cell of each period: one GROUP BY per
-- period, each on the first day of the period holding the delta's day, as
-- Period::start computes it (ISO weeks start on Monday). Five small sorts
-- ran 2-3 times faster than one over every delta joined to its five
-- periods. Read by the view below and by the compaction.
CREATE VIEW regional_pending AS
SELECT region_code, min(region_level) AS region_level, 'day' AS period_type, day AS period_start,
       metric, sum(value) AS value, max(updated_at) AS updated_at
FROM regional_deltas GROUP BY region_code, day, metric
UNION ALL
SELECT region_code, min(region_level), 'week', date(day, '-6 days', 'weekday 1') AS start,
       metric, sum(value), max(updated_at)
FROM regional_deltas GROUP BY region_code, start, metric
UNION ALL
SELECT region_code, min(region_level), 'month', date(day, 'start of month') AS start,
       metric, sum(value), max(updated_at)
FROM regional_deltas GROUP BY region_code, start, metric
UNION ALL
SELECT region_code, min(region_level), 'quarter',
       date(day, 'start of month',
            printf('-%d months', (CAST(substr(day, 6, 2) AS INTEGER) - 1) % 3)) AS start,
       metric, sum(value), max(updated_at)
FROM regional_deltas GROUP BY region_code, start, metric
UNION ALL
SELECT region_code, min(region_level), 'year', date(day, 'start of year') AS start,
       metric, sum(value), max(updated_at)
FROM regional_deltas GROUP BY region_code, start, metric;

CREATE VIEW regional_metrics AS
SELECT c.region_code, c.region_level, c.period_type, c.period_start, c.metric,
       (c.value + ifnull(p.value, 0)) / 100.0 AS value,
       max(c.updated_at, ifnull(p.updated_at, '')) AS updated_at
FROM regional_cells c
LEFT JOIN regional_pending p
  ON p.region_code = c.region_code AND p.period_type = c.period_type
 AND p.period_start = c.period_start AND p.metric = c.metric
WHERE c.value + ifnull(p.value, 0) <> 0
UNION ALL
SELECT p.region_code, p.region_level, p.period_type, p.period_start, p.metric, p.value / 100.0,
       p.updated_at
FROM regional_pending p
WHERE p.value <> 0 AND NOT EXISTS (
    SELECT 1 FROM regional_cells c
    WHERE c.region_code = p.region_code AND c.period_type = p.period_type
      AND c.period_start = p.period_start AND c.metric = p.metric);

-- program_metrics -------------------------------------------------------------

CREATE TABLE program_cells (
    program_id   TEXT NOT NULL,
    period_type  TEXT NOT NULL CHECK (period_type IN ('day', 'week', 'month', 'quarter', 'year')),
    period_start TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        INTEGER NOT NULL, -- hundredths
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (program_id, period_type, period_start, metric)
) WITHOUT ROWID;
INSERT INTO program_cells
SELECT program_id, period_type, period_start, metric, CAST(round(value * 100) AS INTEGER),
       updated_at
FROM program_metrics WHERE true
ORDER BY 1, 2, 3, 4;
DROP TABLE program_metrics;

CREATE TABLE program_deltas (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id TEXT NOT NULL,
    day        TEXT NOT NULL,
    metric     TEXT NOT NULL,
    value      INTEGER NOT NULL, -- hundredths
    updated_at TEXT NOT NULL
);

-- As regional_pending.
CREATE VIEW program_pending AS
SELECT program_id, 'day' AS period_type, day AS period_start, metric, sum(value) AS value,
       max(updated_at) AS updated_at
FROM program_deltas GROUP BY program_id, day, metric
UNION ALL
SELECT program_id, 'week', date(day, '-6 days', 'weekday 1') AS start, metric, sum(value),
       max(updated_at)
FROM program_deltas GROUP BY program_id, start, metric
UNION ALL
SELECT program_id, 'month', date(day, 'start of month') AS start, metric, sum(value),
       max(updated_at)
FROM program_deltas GROUP BY program_id, start, metric
UNION ALL
SELECT program_id, 'quarter',
       date(day, 'start of month',
            printf('-%d months', (CAST(substr(day, 6, 2) AS INTEGER) - 1) % 3)) AS start,
       metric, sum(value), max(updated_at)
FROM program_deltas GROUP BY program_id, start, metric
UNION ALL
SELECT program_id, 'year', date(day, 'start of year') AS start, metric, sum(value),
       max(updated_at)
FROM program_deltas GROUP BY program_id, start, metric;

CREATE VIEW program_metrics AS
SELECT c.program_id, c.period_type, c.period_start, c.metric,
       (c.value + ifnull(p.value, 0)) / 100.0 AS value,
       max(c.updated_at, ifnull(p.updated_at, '')) AS updated_at
FROM program_cells c
LEFT JOIN program_pending p
  ON p.program_id = c.program_id AND p.period_type = c.period_type
 AND p.period_start = c.period_start AND p.metric = c.metric
WHERE c.value + ifnull(p.value, 0) <> 0
UNION ALL
SELECT p.program_id, p.period_type, p.period_start, p.metric, p.value / 100.0, p.updated_at
FROM program_pending p
WHERE p.value <> 0 AND NOT EXISTS (
    SELECT 1 FROM program_cells c
    WHERE c.program_id = p.program_id AND c.period_type = p.period_type
      AND c.period_start = p.period_start AND c.metric = p.metric);
