-- The institution scope holds against an analyst who tries to get round it
-- (docs/operations.md, "Threat model"). Two holes closed:
--
-- 1. A leaky function in a filter. daily_metrics runs with its owner's
--    rights and filters by scope in its own WHERE clause; without
--    security_barrier, Postgres may run a caller's cheap predicate (a
--    plpgsql function that RAISEs its arguments) on rows before that filter,
--    and so hand it other institutions' keys. With security_barrier, only
--    leakproof operators (=, <, IN on text and dates: the key filters) are
--    pushed below the scope filter; anything else sees visible rows only.
--    surgery_roles reads daily_metrics and is covered by the same barrier.
--
-- 2. A shadowed built-in. The functions the views and policies call were
--    parsed at each call with the caller's search_path: an analyst with a
--    schema of its own could put a has_table_privilege() that says yes
--    before pg_catalog. They now have SQL-standard bodies (BEGIN ATOMIC),
--    parsed once, here, with every name bound to its object: no search_path
--    at call time can change what they call. The two scope functions also
--    run with a fixed search_path. period_starts does not: it must stay
--    inlinable into the views and the fold (a SET clause stops inlining,
--    and the body is already immune).

CREATE OR REPLACE FUNCTION outreach.analyst_sees_all() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT pg_catalog.has_table_privilege(session_user, 'outreach.daily_cells'::pg_catalog.regclass, 'SELECT')
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = '*');
END;

CREATE OR REPLACE FUNCTION outreach.analyst_sees(institution text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT outreach.analyst_sees_all()
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = institution);
END;

CREATE OR REPLACE FUNCTION outreach.period_starts(day date)
RETURNS TABLE (period_type text, period_start date)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT v.period_type, v.period_start
    FROM (VALUES ('day', day),
                 ('week', pg_catalog.date_trunc('week', day::pg_catalog.timestamp)::pg_catalog.date),
                 ('month', pg_catalog.date_trunc('month', day::pg_catalog.timestamp)::pg_catalog.date),
                 ('quarter', pg_catalog.date_trunc('quarter', day::pg_catalog.timestamp)::pg_catalog.date),
                 ('year', pg_catalog.date_trunc('year', day::pg_catalog.timestamp)::pg_catalog.date))
         AS v (period_type, period_start);
END;

ALTER VIEW outreach.daily_metrics SET (security_barrier = true);
