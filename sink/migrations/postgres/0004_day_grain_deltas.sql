-- Deltas at the day grain. A batch used to append one regional and one
-- program delta per period (day, week, month, quarter, year); it now
-- appends the day's only, and the periods are derived where the deltas are
-- read: by the views (pending deltas) and by the compaction (folded
-- deltas), both through outreach.period_starts. A week's delta is the sum
-- of its days' deltas, so the totals are the same; a batch writes about a
-- third of the regional rows it wrote before (docs/performance.md).

-- The first day of each period holding `day`, as Period::start computes it
-- (ISO weeks start on Monday). On timestamp, not timestamptz, so that it
-- does not depend on the session's time zone and may be IMMUTABLE.
CREATE FUNCTION outreach.period_starts(day date)
RETURNS TABLE (period_type text, period_start date)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    VALUES ('day', day),
           ('week', date_trunc('week', day::timestamp)::date),
           ('month', date_trunc('month', day::timestamp)::date),
           ('quarter', date_trunc('quarter', day::timestamp)::date),
           ('year', date_trunc('year', day::timestamp)::date)
$$;

-- Fold what is pending into the cells, then swap the delta tables. The
-- views are replaced (same columns), so the summary views over them stay.
INSERT INTO outreach.regional_cells AS c
SELECT region_code, min(region_level), period_type, period_start, metric, sum(value), max(updated_at)
FROM outreach.regional_deltas
GROUP BY region_code, period_type, period_start, metric
ORDER BY region_code, period_type, period_start, metric
ON CONFLICT (region_code, period_type, period_start, metric)
DO UPDATE SET value = c.value + excluded.value,
              updated_at = greatest(c.updated_at, excluded.updated_at);
INSERT INTO outreach.program_cells AS c
SELECT program_id, period_type, period_start, metric, sum(value), max(updated_at)
FROM outreach.program_deltas
GROUP BY program_id, period_type, period_start, metric
ORDER BY program_id, period_type, period_start, metric
ON CONFLICT (program_id, period_type, period_start, metric)
DO UPDATE SET value = c.value + excluded.value,
              updated_at = greatest(c.updated_at, excluded.updated_at);

CREATE OR REPLACE VIEW outreach.regional_metrics AS
SELECT region_code, region_level, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM outreach.regional_cells
GROUP BY region_code, region_level, period_type, period_start, metric
HAVING sum(value) <> 0;
CREATE OR REPLACE VIEW outreach.program_metrics AS
SELECT program_id, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM outreach.program_cells
GROUP BY program_id, period_type, period_start, metric
HAVING sum(value) <> 0;
DROP TABLE outreach.regional_deltas;
DROP TABLE outreach.program_deltas;

CREATE TABLE outreach.regional_deltas (
    region_code  text COLLATE "C" NOT NULL,
    region_level text COLLATE "C" NOT NULL,
    day          date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL, -- hundredths
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE outreach.program_deltas (
    program_id   text COLLATE "C" NOT NULL,
    day          date NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    value        bigint NOT NULL, -- hundredths
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Cells plus pending deltas spread to their periods. A filter on
-- region_code or metric reaches both sides; one on period_type or
-- period_start reaches the cells' primary key and is applied to the
-- (small) pending deltas after the spread.
CREATE OR REPLACE VIEW outreach.regional_metrics AS
SELECT region_code, region_level, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM (SELECT region_code, region_level, period_type, period_start, metric, value, updated_at
      FROM outreach.regional_cells
      UNION ALL
      SELECT d.region_code, d.region_level, p.period_type, p.period_start, d.metric, d.value,
             d.updated_at
      FROM outreach.regional_deltas d CROSS JOIN LATERAL outreach.period_starts(d.day) p) t
GROUP BY region_code, region_level, period_type, period_start, metric
HAVING sum(value) <> 0;
CREATE OR REPLACE VIEW outreach.program_metrics AS
SELECT program_id, period_type, period_start, metric,
       trim_scale(sum(value) * 0.01) AS value, max(updated_at) AS updated_at
FROM (SELECT program_id, period_type, period_start, metric, value, updated_at
      FROM outreach.program_cells
      UNION ALL
      SELECT d.program_id, p.period_type, p.period_start, d.metric, d.value, d.updated_at
      FROM outreach.program_deltas d CROSS JOIN LATERAL outreach.period_starts(d.day) p) t
GROUP BY program_id, period_type, period_start, metric
HAVING sum(value) <> 0;
