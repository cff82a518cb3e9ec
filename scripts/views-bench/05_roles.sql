-- (views-bench copy of barrier-bench/05_roles.sql, roles renamed vb_*)
-- roles.rs::grant with writer vb_writer and analyst vb_analyst (names of
-- our own, so that nothing else on this cluster is touched), then
-- `grant-analyst vb_scoped --institution h07` and `grant-analyst vb_all --all`.
BEGIN;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vb_writer') THEN CREATE ROLE vb_writer NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vb_analyst') THEN CREATE ROLE vb_analyst NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vb_scoped') THEN CREATE ROLE vb_scoped LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vb_all') THEN CREATE ROLE vb_all LOGIN; END IF;
END $$;
REVOKE ALL ON SCHEMA outreach FROM PUBLIC;
GRANT USAGE ON SCHEMA outreach TO vb_writer, vb_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA outreach TO vb_writer;
REVOKE INSERT, UPDATE, DELETE ON outreach.analyst_scope FROM vb_writer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA outreach TO vb_writer;
GRANT SELECT ON public._sqlx_migrations TO vb_writer;
GRANT SELECT ON outreach.regional_metrics, outreach.program_metrics, outreach.daily_metrics,
  outreach.missions, outreach.regions, outreach.programs, outreach.quarantine,
  outreach.program_summary, outreach.region_summary, outreach.surgery_roles TO vb_analyst;
GRANT SELECT ON outreach.analyst_scope TO vb_analyst;
GRANT SELECT ON outreach.consumer_offsets TO vb_analyst;
ALTER TABLE outreach.missions ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.missions;
DROP POLICY IF EXISTS analyst_scope ON outreach.missions;
DROP POLICY IF EXISTS analyst_rows ON outreach.missions;
CREATE POLICY writer_all ON outreach.missions TO vb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.missions FOR SELECT TO vb_analyst USING (
  (SELECT outreach.analyst_sees_all()) OR institution_id IN
    (SELECT s.institution_id FROM outreach.analyst_scope s WHERE s.role_name = session_user));
ALTER TABLE outreach.quarantine ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.quarantine;
DROP POLICY IF EXISTS analyst_scope ON outreach.quarantine;
DROP POLICY IF EXISTS analyst_rows ON outreach.quarantine;
CREATE POLICY writer_all ON outreach.quarantine TO vb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.quarantine FOR SELECT TO vb_analyst USING ((SELECT outreach.analyst_sees_all()));
ALTER TABLE outreach.analyst_scope ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.analyst_scope;
DROP POLICY IF EXISTS analyst_scope ON outreach.analyst_scope;
DROP POLICY IF EXISTS analyst_rows ON outreach.analyst_scope;
CREATE POLICY writer_all ON outreach.analyst_scope TO vb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.analyst_scope FOR SELECT TO vb_analyst USING (role_name = session_user);
-- grant-analyst
GRANT vb_analyst TO vb_scoped;
GRANT vb_analyst TO vb_all;
DELETE FROM outreach.analyst_scope WHERE role_name IN ('vb_scoped', 'vb_all');
INSERT INTO outreach.analyst_scope VALUES ('vb_scoped', 'h07'), ('vb_all', '*');
-- this kit: the old views (v6) and the plain tables (plain) readable alike
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_namespace WHERE nspname = 'v6') THEN
    GRANT USAGE ON SCHEMA v6 TO vb_analyst;
    GRANT SELECT ON ALL TABLES IN SCHEMA v6 TO vb_analyst;
  END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS plain;
GRANT USAGE ON SCHEMA plain TO vb_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA plain GRANT SELECT ON TABLES TO vb_analyst;
COMMIT;
