-- Before 0007 is applied: copy the three roll-up views as 0004-0006 left
-- them into schema v6, verbatim (pg_get_viewdef with an empty search_path
-- qualifies every name; the view options, security_barrier on daily_metrics,
-- are kept). They read the same outreach.*_cells / *_deltas tables as the
-- new views, so old and new can be compared in one snapshot.
SET search_path = pg_catalog;
CREATE SCHEMA v6;
DO $$
DECLARE
    v text;
    opts text;
BEGIN
    FOREACH v IN ARRAY ARRAY['regional_metrics', 'program_metrics', 'daily_metrics'] LOOP
        SELECT coalesce(' WITH (' || array_to_string(c.reloptions, ', ') || ')', '') INTO opts
        FROM pg_class c WHERE c.oid = ('outreach.' || v)::regclass;
        EXECUTE format('CREATE VIEW v6.%I%s AS %s', v, opts,
                       pg_get_viewdef(('outreach.' || v)::regclass));
    END LOOP;
END $$;
