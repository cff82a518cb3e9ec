-- Analyst views and the institution scope of row-level security.
--
-- Indicators are ratios of summed numerators and denominators over the
-- period, never averages of ratios; NULL where the denominator is 0.

-- Which institution an analyst login role may see in daily_metrics and
-- missions. A role listed here sees only that institution's rows; analyst
-- roles not listed see every row. (Roles and policies: see sink/src/roles.rs.)
CREATE TABLE outreach.analyst_scope (
    role_name      name NOT NULL,
    institution_id text NOT NULL,
    PRIMARY KEY (role_name, institution_id)
);

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

-- Surgeries by the visiting team's role, per program, region and month:
-- performed or supervised by the team versus assisted (the `role` dim).
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
