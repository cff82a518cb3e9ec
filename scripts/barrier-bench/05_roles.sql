-- roles.rs::grant with writer sbb_writer and analyst sbb_analyst (names of
-- our own, so that nothing else on this cluster is touched), then
-- `grant-analyst sbb_scoped --institution h07` and `grant-analyst sbb_all --all`.
BEGIN;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sbb_writer') THEN CREATE ROLE sbb_writer NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sbb_analyst') THEN CREATE ROLE sbb_analyst NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sbb_scoped') THEN CREATE ROLE sbb_scoped LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sbb_all') THEN CREATE ROLE sbb_all LOGIN; END IF;
END $$;
REVOKE ALL ON SCHEMA outreach FROM PUBLIC;
GRANT USAGE ON SCHEMA outreach TO sbb_writer, sbb_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA outreach TO sbb_writer;
REVOKE INSERT, UPDATE, DELETE ON outreach.analyst_scope FROM sbb_writer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA outreach TO sbb_writer;
GRANT SELECT ON public._sqlx_migrations TO sbb_writer;
GRANT SELECT ON outreach.regional_metrics, outreach.program_metrics, outreach.daily_metrics,
  outreach.missions, outreach.regions, outreach.programs, outreach.quarantine,
  outreach.program_summary, outreach.region_summary, outreach.surgery_roles TO sbb_analyst;
GRANT SELECT ON outreach.analyst_scope TO sbb_analyst;
GRANT SELECT ON outreach.consumer_offsets TO sbb_analyst;
ALTER TABLE outreach.missions ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.missions;
DROP POLICY IF EXISTS analyst_scope ON outreach.missions;
DROP POLICY IF EXISTS analyst_rows ON outreach.missions;
CREATE POLICY writer_all ON outreach.missions TO sbb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.missions FOR SELECT TO sbb_analyst USING (
  (SELECT outreach.analyst_sees_all()) OR institution_id IN
    (SELECT s.institution_id FROM outreach.analyst_scope s WHERE s.role_name = session_user));
ALTER TABLE outreach.quarantine ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.quarantine;
DROP POLICY IF EXISTS analyst_scope ON outreach.quarantine;
DROP POLICY IF EXISTS analyst_rows ON outreach.quarantine;
CREATE POLICY writer_all ON outreach.quarantine TO sbb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.quarantine FOR SELECT TO sbb_analyst USING ((SELECT outreach.analyst_sees_all()));
ALTER TABLE outreach.analyst_scope ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS writer_all ON outreach.analyst_scope;
DROP POLICY IF EXISTS analyst_scope ON outreach.analyst_scope;
DROP POLICY IF EXISTS analyst_rows ON outreach.analyst_scope;
CREATE POLICY writer_all ON outreach.analyst_scope TO sbb_writer USING (true) WITH CHECK (true);
CREATE POLICY analyst_rows ON outreach.analyst_scope FOR SELECT TO sbb_analyst USING (role_name = session_user);
-- grant-analyst
GRANT sbb_analyst TO sbb_scoped;
GRANT sbb_analyst TO sbb_all;
DELETE FROM outreach.analyst_scope WHERE role_name IN ('sbb_scoped', 'sbb_all');
INSERT INTO outreach.analyst_scope VALUES ('sbb_scoped', 'h07'), ('sbb_all', '*');
COMMIT;
