-- The scope functions as migration 0005 created them (parsed at each call
-- with the caller's search_path; inlinable).
CREATE OR REPLACE FUNCTION outreach.analyst_sees_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT has_table_privilege(session_user, 'outreach.daily_cells', 'SELECT')
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = '*')
$$;
CREATE OR REPLACE FUNCTION outreach.analyst_sees(institution text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT outreach.analyst_sees_all()
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = institution)
$$;
