# The queries measured. Grafana macros substituted for the dashboard's
# default range (now-2y .. now, "now" = 2026-12-05 12:00Z), $metric =
# outpatient_visits, $period = month, $__interval = 12h (2 years over a
# ~1,500 px panel). The report's bind parameters are written as literals:
# sqlx sends them to a fresh connection, whose first executions get custom
# plans, in which Postgres folds them exactly as it folds literals.
FROM_TS = "'2024-12-05T00:00:00Z'"
TO_TS = "'2026-12-05T12:00:00Z'"

REPORT_ACTIVITY = """
SELECT program_id, region_code, to_char(day, 'YYYY-MM') AS month, metric,
       CASE WHEN metric = 'surgeries' THEN dims->>'role' END AS role,
       (sum(value) * 100)::bigint AS hundredths, min(day) AS first_day, max(day) AS last_day
FROM outreach.daily_metrics
WHERE (cardinality({progs}::text[]) = 0 OR program_id = ANY({progs}::text[]))
  AND ({d1}::date IS NULL OR day >= {d1}) AND ({d2}::date IS NULL OR day <= {d2})
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5"""

QUERIES = {
    # --- deploy/grafana/dashboards/outreach.json -------------------------
    "D0 var $metric": "SELECT DISTINCT metric FROM outreach.program_metrics ORDER BY 1",
    "D1 program totals": f"""
SELECT m.period_start::timestamp AS "time", coalesce(p.name, m.program_id) AS metric, m.value
FROM outreach.program_metrics m
LEFT JOIN outreach.programs p ON p.program_id = m.program_id
WHERE m.metric = 'outpatient_visits' AND m.period_type = 'month'
  AND m.period_start >= date_trunc('month', {FROM_TS}::timestamp)::date
  AND m.period_start <= {TO_TS}::date
ORDER BY 1, 2""",
    "D2 by province": f"""
SELECT r.name || ' (' || r.region_code || ')' AS province, sum(m.value) AS total
FROM outreach.regional_metrics m
JOIN outreach.regions r ON r.region_code = m.region_code
WHERE m.region_level = 'province' AND m.period_type = 'day' AND m.metric = 'outpatient_visits'
  AND m.period_start BETWEEN {FROM_TS}::date AND {TO_TS}::date
GROUP BY r.region_code, r.name
ORDER BY total DESC""",
    "D3 since last commit": """
SELECT extract(epoch FROM now() - max(updated_at)) AS "since last commit" FROM outreach.consumer_offsets""",
    "D4 partitions": """
SELECT topic, "partition", next_offset, updated_at AS last_commit,
       extract(epoch FROM now() - updated_at) AS since_last_commit
FROM outreach.consumer_offsets ORDER BY topic, "partition\"""",
    "D5 quarantine by code": f"""
SELECT error_code, count(*) AS messages, max(received_at) AS last_received
FROM outreach.quarantine
WHERE received_at BETWEEN {FROM_TS} AND {TO_TS}
GROUP BY error_code ORDER BY messages DESC, error_code""",
    "D6 quarantine over time": f"""
SELECT floor(extract(epoch from received_at)/43200)*43200 AS "time", error_code AS metric, count(*) AS messages
FROM outreach.quarantine
WHERE received_at BETWEEN {FROM_TS} AND {TO_TS}
GROUP BY 1, 2 ORDER BY 1, 2""",
    # --- sink/src/report.rs (outreach report) ----------------------------
    "R1 report, all, no dates": REPORT_ACTIVITY.format(progs="'{}'", d1="NULL", d2="NULL"),
    "R2 report, all, 2025": REPORT_ACTIVITY.format(progs="'{}'", d1="'2025-01-01'", d2="'2025-12-31'"),
    "R3 report, prog-2, 2026Q3": REPORT_ACTIVITY.format(progs="'{prog-2}'", d1="'2026-07-01'", d2="'2026-09-30'"),
    "R4 report quarantine 2025": """
SELECT error_code, count(*) AS messages, min(error_detail) AS example
FROM outreach.quarantine
WHERE ('2025-01-01'::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date >= '2025-01-01')
  AND ('2025-12-31'::date IS NULL OR (received_at AT TIME ZONE 'UTC')::date <= '2025-12-31')
GROUP BY error_code ORDER BY error_code""",
    "R5 report lateness 2025": """
SELECT ((updated_at AT TIME ZONE 'UTC')::date - period_start)::bigint AS days, count(*) AS cells
FROM outreach.program_metrics
WHERE period_type = 'day'
  AND (cardinality('{}'::text[]) = 0 OR program_id = ANY('{}'::text[]))
  AND ('2025-01-01'::date IS NULL OR period_start >= '2025-01-01') AND ('2025-12-31'::date IS NULL OR period_start <= '2025-12-31')
GROUP BY 1 ORDER BY 1""",
    # --- ad hoc analyst queries on the scoped view (README: "a filter on a
    # key column ... reaches the cells' index") ----------------------------
    "A1 institution + month": """
SELECT metric, sum(value) FROM outreach.daily_metrics
WHERE institution_id = 'h07' AND day BETWEEN '2026-10-01' AND '2026-10-31'
GROUP BY metric ORDER BY metric""",
    "A2 county + day": """
SELECT * FROM outreach.daily_metrics WHERE region_code = '620322' AND day = '2026-03-05'""",
    "A3 Grafana-style $__timeFilter(day)": f"""
SELECT day AS "time", sum(value) AS outpatients FROM outreach.daily_metrics
WHERE metric = 'outpatient_visits' AND day BETWEEN {FROM_TS} AND {TO_TS}
GROUP BY 1 ORDER BY 1""",
    "A4 last 30 days via now()": """
SELECT metric, sum(value) FROM outreach.daily_metrics
WHERE day >= now() - interval '30 days'
GROUP BY metric ORDER BY metric""",
    "A5 dims filter + day range": """
SELECT day, sum(value) FROM outreach.daily_metrics
WHERE metric = 'surgeries' AND dims->>'role' = 'performed' AND day BETWEEN '2026-01-01' AND '2026-06-30'
GROUP BY day ORDER BY day""",
    "A6 surgery_roles, program + months": """
SELECT * FROM outreach.surgery_roles WHERE program_id = 'prog-2' AND month >= '2026-01-01' ORDER BY month, region_code""",
    "A7 surgery_roles, one month": """
SELECT * FROM outreach.surgery_roles WHERE month = '2026-11-01' ORDER BY program_id, region_code""",
    # The same as A4 with the bound computed as a date (workarounds):
    "A8 last 30 days via current_date": """
SELECT metric, sum(value) FROM outreach.daily_metrics
WHERE day >= current_date - 30
GROUP BY metric ORDER BY metric""",
    "A9 last 30 days via (now() - 30 days)::date": """
SELECT metric, sum(value) FROM outreach.daily_metrics
WHERE day >= (now() - interval '30 days')::date
GROUP BY metric ORDER BY metric""",
}
