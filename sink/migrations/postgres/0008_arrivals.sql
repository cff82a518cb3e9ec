-- Reporting timeliness (docs/contract.md, "Reporting timeliness"): when each
-- activity fact first reached the statistics, and when its winning revision
-- did. An arrival is the Kafka timestamp of the message that carried it
-- (the broker's append time where the topic keeps LogAppendTime, else the
-- producer's create time), the earliest of every delivery: a redelivery or
-- a replay of the same message is not a new arrival, and the figure is the
-- same whatever order or batches the messages come in. A rebuild reads the
-- ledger, so it keeps them.
--
-- Facts stored before this migration keep NULL in both columns: nothing
-- recorded when they arrived. They count as events in the views below, not
-- in the figures about days.
ALTER TABLE outreach.activity_facts
    ADD COLUMN first_arrived_at timestamptz,
    ADD COLUMN revision_arrived_at timestamptz;

-- One row per institution, program, month of the work and days between the
-- work's day and its first arrival (UTC date; an arrival dated before the
-- day, east of Greenwich, counts as day 0): the distribution every
-- timeliness figure is computed from, exactly, at any grouping (the report
-- sums it per program). Scoped like daily_metrics, behind the same
-- security barrier (migrations 0005, 0006): only leakproof key filters run
-- below the scope filter, and the functions it calls were bound when they
-- were created.
CREATE VIEW outreach.reporting_lags WITH (security_barrier = true) AS
SELECT f.institution_id, f.program_id,
       pg_catalog.date_trunc('month', f.day::pg_catalog.timestamp)::pg_catalog.date AS month,
       CASE WHEN f.first_arrived_at IS NOT NULL
            THEN GREATEST(0, (f.first_arrived_at AT TIME ZONE 'UTC')::pg_catalog.date - f.day)
       END AS days_to_arrival,
       count(*) AS events,
       count(*) FILTER (WHERE f.revision > 1 AND f.value <> 0) AS corrections,
       count(*) FILTER (WHERE f.value = 0) AS withdrawals
FROM outreach.activity_facts f
WHERE (SELECT outreach.analyst_sees_all())
   OR f.institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                           WHERE s.role_name = session_user)
GROUP BY 1, 2, 3, 4;

-- One row per institution × program × month of the work. Percentiles are
-- nearest-rank over the facts whose arrival is known: the median is the
-- smallest day count that at least half of them arrived within, the 90th
-- percentile the one at least 90 % did. Shares are of the same facts, to
-- four decimals; NULL where no arrival is known.
CREATE VIEW outreach.reporting_timeliness AS
SELECT institution_id, program_id, month,
       sum(events)::bigint AS events,
       sum(corrections)::bigint AS corrections,
       sum(withdrawals)::bigint AS withdrawals,
       coalesce(sum(events) FILTER (WHERE days_to_arrival IS NULL), 0)::bigint AS arrival_unknown,
       min(days_to_arrival) FILTER (WHERE 2 * reached >= known) AS median_days,
       min(days_to_arrival) FILTER (WHERE 10 * reached >= 9 * known) AS p90_days,
       round(coalesce(sum(events) FILTER (WHERE days_to_arrival <= 7), 0) / nullif(max(known), 0), 4)
           AS within_7_days,
       round(coalesce(sum(events) FILTER (WHERE days_to_arrival <= 30), 0) / nullif(max(known), 0), 4)
           AS within_30_days
FROM (SELECT l.*,
             sum(l.events) OVER (PARTITION BY l.institution_id, l.program_id, l.month
                                 ORDER BY l.days_to_arrival NULLS LAST
                                 ROWS UNBOUNDED PRECEDING) AS reached,
             coalesce(sum(l.events) FILTER (WHERE l.days_to_arrival IS NOT NULL)
                 OVER (PARTITION BY l.institution_id, l.program_id, l.month), 0) AS known
      FROM outreach.reporting_lags l) t
GROUP BY institution_id, program_id, month;

COMMENT ON VIEW outreach.reporting_lags IS
    'Activity facts per institution, program, month of the work and days from the work''s day to the fact''s first arrival (NULL: stored before arrivals were kept). Scoped by analyst_scope like daily_metrics.';
COMMENT ON VIEW outreach.reporting_timeliness IS
    'Per institution, program and month of the work: facts, corrections, withdrawals, and how many days after the work they first arrived (nearest-rank median and 90th percentile, share within 7 and 30 days). Scoped like daily_metrics.';
