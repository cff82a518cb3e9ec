-- Correctness: the new views (outreach.*) against 0006's (v6.*), row for
-- row as text (so 2 and 2.00 differ), EXCEPT ALL both ways, in one
-- snapshot; daily_metrics also as the scoped login (h07) and the '*' login.
-- With :plain = 1, the plain tables against the new views too; v7x.*
-- (70_fix_views.sql) and v7g.* (72_gated_views.sql) against v6.* if present.
-- Prints one line per comparison: name, rows, new-not-old, old-not-new,
-- and the first differing rows if any.
\set ON_ERROR_STOP 1
SET work_mem = '256MB';
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE chk (cmp text, who text, n bigint, a_not_b bigint, b_not_a bigint, examples text) ON COMMIT PRESERVE ROWS;
CREATE FUNCTION pg_temp.cmp(a text, b text, who text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n bigint; x bigint; y bigint; ex text;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', a) INTO n;
    EXECUTE format('SELECT count(*) FROM (SELECT t::text FROM %s t EXCEPT ALL SELECT t::text FROM %s t) d', a, b) INTO x;
    EXECUTE format('SELECT count(*) FROM (SELECT t::text FROM %s t EXCEPT ALL SELECT t::text FROM %s t) d', b, a) INTO y;
    IF x + y > 0 THEN
        EXECUTE format('SELECT string_agg(r, E''\n'') FROM (
            (SELECT ''+new '' || r AS r FROM (SELECT t::text AS r FROM %1$s t EXCEPT ALL SELECT t::text FROM %2$s t) d ORDER BY 1 LIMIT 15)
            UNION ALL
            (SELECT ''-old '' || r FROM (SELECT t::text AS r FROM %2$s t EXCEPT ALL SELECT t::text FROM %1$s t) d ORDER BY 1 LIMIT 15)) e', a, b) INTO ex;
    END IF;
    INSERT INTO pg_temp.chk VALUES (a || ' vs ' || b, who, n, x, y, ex);
END $$;
\o /dev/null
SELECT pg_temp.cmp('outreach.regional_metrics', 'v6.regional_metrics', current_user);
SELECT pg_temp.cmp('outreach.program_metrics', 'v6.program_metrics', current_user);
SELECT pg_temp.cmp('outreach.daily_metrics', 'v6.daily_metrics', session_user);
-- 70_fix_views.sql's variant, if there
SELECT pg_temp.cmp('v7x.regional_metrics', 'v6.regional_metrics', current_user)
WHERE to_regclass('v7x.regional_metrics') IS NOT NULL;
SELECT pg_temp.cmp('v7x.program_metrics', 'v6.program_metrics', current_user)
WHERE to_regclass('v7x.program_metrics') IS NOT NULL;
-- 72_gated_views.sql's variant, if there
SELECT pg_temp.cmp('v7g.regional_metrics', 'v6.regional_metrics', current_user)
WHERE to_regclass('v7g.regional_metrics') IS NOT NULL;
SELECT pg_temp.cmp('v7g.program_metrics', 'v6.program_metrics', current_user)
WHERE to_regclass('v7g.program_metrics') IS NOT NULL;
SELECT pg_temp.cmp('v7g.daily_metrics', 'v6.daily_metrics', session_user)
WHERE to_regclass('v7g.daily_metrics') IS NOT NULL;
GRANT SELECT, INSERT ON pg_temp.chk TO vb_analyst;
SET SESSION AUTHORIZATION vb_scoped;
SELECT pg_temp.cmp('outreach.daily_metrics', 'v6.daily_metrics', session_user);
SELECT pg_temp.cmp('v7g.daily_metrics', 'v6.daily_metrics', session_user)
WHERE to_regclass('v7g.daily_metrics') IS NOT NULL;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION vb_all;
SELECT pg_temp.cmp('outreach.daily_metrics', 'v6.daily_metrics', session_user);
SELECT pg_temp.cmp('v7g.daily_metrics', 'v6.daily_metrics', session_user)
WHERE to_regclass('v7g.daily_metrics') IS NOT NULL;
RESET SESSION AUTHORIZATION;
\if :plain
SELECT pg_temp.cmp('plain.regional_metrics', 'outreach.regional_metrics', current_user);
SELECT pg_temp.cmp('plain.program_metrics', 'outreach.program_metrics', current_user);
SELECT pg_temp.cmp('plain.daily_metrics', 'outreach.daily_metrics', current_user);
\endif
COMMIT;
\o
\pset tuples_only on
\pset format unaligned
\pset fieldsep '\t'
SELECT 'CHECK', cmp, who, n, a_not_b, b_not_a, coalesce(E'\n' || examples, '') FROM chk;
