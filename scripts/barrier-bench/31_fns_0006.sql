-- The scope functions as migration 0006 creates them.
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
