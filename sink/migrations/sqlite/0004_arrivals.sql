-- Reporting timeliness, as Postgres' migration 0008 (read its comments):
-- the first arrival of each activity fact and of its winning revision
-- (RFC 3339 text in UTC; NULL for facts stored before this migration), and
-- the two analyst views. SQLite has no roles: whoever reads the file sees
-- every institution.
ALTER TABLE activity_facts ADD COLUMN first_arrived_at TEXT;
ALTER TABLE activity_facts ADD COLUMN revision_arrived_at TEXT;

CREATE VIEW reporting_lags AS
SELECT institution_id, program_id,
       substr(day, 1, 7) || '-01' AS month,
       CASE WHEN first_arrived_at IS NOT NULL
            THEN max(0, CAST(julianday(substr(first_arrived_at, 1, 10)) - julianday(day) AS INTEGER))
       END AS days_to_arrival,
       count(*) AS events,
       count(*) FILTER (WHERE revision > 1 AND value <> 0) AS corrections,
       count(*) FILTER (WHERE value = 0) AS withdrawals
FROM activity_facts
GROUP BY 1, 2, 3, 4;

CREATE VIEW reporting_timeliness AS
SELECT institution_id, program_id, month,
       sum(events) AS events,
       sum(corrections) AS corrections,
       sum(withdrawals) AS withdrawals,
       coalesce(sum(events) FILTER (WHERE days_to_arrival IS NULL), 0) AS arrival_unknown,
       min(days_to_arrival) FILTER (WHERE 2 * reached >= known) AS median_days,
       min(days_to_arrival) FILTER (WHERE 10 * reached >= 9 * known) AS p90_days,
       round(1.0 * coalesce(sum(events) FILTER (WHERE days_to_arrival <= 7), 0) / nullif(max(known), 0), 4)
           AS within_7_days,
       round(1.0 * coalesce(sum(events) FILTER (WHERE days_to_arrival <= 30), 0) / nullif(max(known), 0), 4)
           AS within_30_days
FROM (SELECT l.*,
             sum(events) OVER (PARTITION BY institution_id, program_id, month
                               ORDER BY days_to_arrival NULLS LAST
                               ROWS UNBOUNDED PRECEDING) AS reached,
             coalesce(sum(events) FILTER (WHERE days_to_arrival IS NOT NULL)
                 OVER (PARTITION BY institution_id, program_id, month), 0) AS known
      FROM reporting_lags l) t
GROUP BY institution_id, program_id, month;
