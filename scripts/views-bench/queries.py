# The queries measured, {S} standing for the schema read: outreach (the new
# views, 0007), v6 (0006's views) or plain (plain tables).
# Grafana macros as barrier-bench/queries.py substituted them: the
# dashboard's default range (now-2y .. now, "now" = 2026-12-05 12:00Z),
# $metric = outpatient_visits, $period = month.
FROM_TS = "'2024-12-05T00:00:00Z'"
TO_TS = "'2026-12-05T12:00:00Z'"

# name -> (sql, logins): "su" = postgres (scope '*'), "scoped" = vb_scoped (h07)
QUERIES = {
    # --- deploy/grafana/dashboards/outreach.json, the panels and the
    # variable that read regional_metrics / program_metrics --------------
    "D0 dashboard var $metric": ("SELECT DISTINCT metric FROM {S}.program_metrics ORDER BY 1", ["su"]),
    "D1 dashboard program totals": (f"""
SELECT m.period_start::timestamp AS "time", coalesce(p.name, m.program_id) AS metric, m.value
FROM {{S}}.program_metrics m
LEFT JOIN outreach.programs p ON p.program_id = m.program_id
WHERE m.metric = 'outpatient_visits' AND m.period_type = 'month'
  AND m.period_start >= date_trunc('month', {FROM_TS}::timestamp)::date
  AND m.period_start <= {TO_TS}::date
ORDER BY 1, 2""", ["su"]),
    "D2 dashboard by province": (f"""
SELECT r.name || ' (' || r.region_code || ')' AS province, sum(m.value) AS total
FROM {{S}}.regional_metrics m
JOIN outreach.regions r ON r.region_code = m.region_code
WHERE m.region_level = 'province' AND m.period_type = 'day' AND m.metric = 'outpatient_visits'
  AND m.period_start BETWEEN {FROM_TS}::date AND {TO_TS}::date
GROUP BY r.region_code, r.name
ORDER BY total DESC""", ["su"]),
    # --- issue 27's list ----------------------------------------------------
    "Q2 program totals by month": ("""
SELECT program_id, period_start, sum(value) FROM {S}.program_metrics
WHERE period_type = 'month' AND metric = 'outpatient_visits' GROUP BY 1, 2""", ["su"]),
    "Q3 province, day grain, 3 months": ("""
SELECT * FROM {S}.regional_metrics
WHERE region_level = 'province' AND period_type = 'day'
  AND period_start BETWEEN '2026-06-01' AND '2026-08-31' AND metric = 'outpatient_visits'""", ["su"]),
    "Q4 one county by month": ("""
SELECT * FROM {S}.regional_metrics WHERE region_code = '620322' AND period_type = 'month'""", ["su"]),
    "Q5 min county code": ("""
SELECT min(region_code) FROM {S}.regional_metrics WHERE region_level = 'county'""", ["su"]),
    "Q6 province x month count, sum": ("""
SELECT region_code, period_start, count(*), sum(value) FROM {S}.regional_metrics
WHERE region_level = 'province' AND period_type = 'month' GROUP BY 1, 2""", ["su"]),
    # --- daily_metrics ------------------------------------------------------
    "Q7a daily: institution + 3 months": ("""
SELECT metric, sum(value) FROM {S}.daily_metrics
WHERE institution_id = 'h07' AND day BETWEEN '2026-06-01' AND '2026-08-31'
GROUP BY metric ORDER BY metric""", ["su", "scoped"]),
    "Q7b daily: county + day": ("""
SELECT * FROM {S}.daily_metrics WHERE region_code = '640622' AND day = '2026-03-05'""", ["su", "scoped"]),
    "Q7c daily: whole table count, sum": ("""
SELECT count(*), sum(value) FROM {S}.daily_metrics""", ["su", "scoped"]),
}
