-- Least privilege by default: an analyst login sees no institution's rows
-- until it is granted some. Until 0004 a login missing from analyst_scope
-- saw every institution; now it sees none of daily_metrics, missions and
-- the quarantine, and seeing every institution is an explicit grant: a row
-- (login, '*'). ('*' can never be an institution: identifiers are drawn
-- from [a-z0-9._:-].) The shared aggregates (regional_metrics,
-- program_metrics and their summary views) stay readable by every analyst.
--
-- `outreach grant-analyst LOGIN --institution ID... | --all` and
-- `outreach revoke-analyst LOGIN` write analyst_scope (src/cli.rs).

-- Whether the session's login sees every institution: it may read the
-- stored cells themselves (the schema owner, the writer role), or it was
-- granted '*'. session_user, not current_user: SET ROLE does not widen it.
CREATE FUNCTION outreach.analyst_sees_all() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT has_table_privilege(session_user, 'outreach.daily_cells', 'SELECT')
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = '*')
$$;

-- Whether the session's login sees one institution's rows (the row-level
-- security policy of `missions`, created by sink/src/postgres/roles.rs).
CREATE FUNCTION outreach.analyst_sees(institution text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT outreach.analyst_sees_all()
        OR EXISTS (SELECT FROM outreach.analyst_scope s
                   WHERE s.role_name = session_user AND s.institution_id = institution)
$$;

-- Upgrading must not cut off today's readers: every login that reads the
-- analyst tables, cannot read the stored cells and has no scope saw every
-- institution until now, and keeps that as an explicit grant.
DO $$
DECLARE
    kept text;
BEGIN
    WITH granted AS (
        INSERT INTO outreach.analyst_scope (role_name, institution_id)
        SELECT r.rolname, '*' FROM pg_roles r
        WHERE r.rolcanlogin
          AND has_table_privilege(r.oid, 'outreach.daily_metrics', 'SELECT')
          AND NOT has_table_privilege(r.oid, 'outreach.daily_cells', 'SELECT')
          AND NOT EXISTS (SELECT FROM outreach.analyst_scope s WHERE s.role_name = r.rolname)
        RETURNING role_name
    )
    SELECT string_agg(role_name, ', ' ORDER BY role_name) INTO kept FROM granted;
    IF kept IS NOT NULL THEN
        RAISE WARNING 'analyst logins without a scope used to see every institution; they keep it as an explicit grant (institution_id ''*''): %. New logins see no institution until granted (outreach grant-analyst).', kept;
    END IF;
END $$;

-- The policies as they stood read "no scope row: every row"; the same
-- transaction turns them around (roles.rs creates them so on new databases).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_policies WHERE schemaname = 'outreach'
               AND tablename = 'missions' AND policyname = 'analyst_rows') THEN
        ALTER POLICY analyst_rows ON outreach.missions
            USING (outreach.analyst_sees(institution_id));
    END IF;
    IF EXISTS (SELECT FROM pg_policies WHERE schemaname = 'outreach'
               AND tablename = 'quarantine' AND policyname = 'analyst_rows') THEN
        ALTER POLICY analyst_rows ON outreach.quarantine
            USING (outreach.analyst_sees_all());
    END IF;
END $$;

-- daily_metrics applies the scope in its definition (batches COPY into its
-- tables, which row-level security would forbid). The all-institutions test
-- runs once per query (an InitPlan), the institution list as one hashed
-- subplan: a whole-table read costs no per-row look-up.
CREATE OR REPLACE VIEW outreach.daily_metrics AS
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims,
       trim_scale(sum(value) * 0.01) AS value
FROM (SELECT * FROM outreach.daily_cells UNION ALL SELECT * FROM outreach.daily_deltas) t
WHERE (SELECT outreach.analyst_sees_all())
   OR t.institution_id IN (SELECT s.institution_id FROM outreach.analyst_scope s
                           WHERE s.role_name = session_user)
GROUP BY day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims
HAVING sum(value) <> 0;

COMMENT ON TABLE outreach.analyst_scope IS
    'Which institutions'' rows of daily_metrics, missions and the quarantine an analyst login sees: one row per institution, or institution_id ''*'' for every one (and the quarantine). A login with no row sees none. Written by outreach grant-analyst / revoke-analyst.';
