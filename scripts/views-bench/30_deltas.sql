-- Pending deltas as batches leave them between two folds.
-- psql variables:
--   dpicks  daily cells picked; rpicks county-day regional cells picked
--           (each gives a row for the county and one for each of its 3
--           ancestors, as a batch writes them); ppicks program-day cells
--   since   pick among days from this one (default: the whole history,
--           2024-01-01; '2026-11-20': the last 15 days, live ingestion)
--   dcopies, rcopies, ppcopies  batches per pick (default 1): copies 2..n
--           add +100 each to the same key
--   truncate  1 (default): replace what is pending; 0: add to it
-- Keys are picked by a hash h of the key (deterministic, uniform). Per pick:
--   +100 (one batch); h % 4 = 0: +200 more (a second batch, same key);
--   h % 50 = 1: minus the stored value instead (the total becomes 0 with one
--   copy: the key must vanish from the view); h % 20 = 3: also +100 on a new
--   day 2026-12-05..10 (no stored day cell); h % 100 = 7: +100 and -100 on
--   2026-12-20 (a new key whose total is 0); regional/program updated_at
--   2026-12-05 10:00 + a second per batch, or for h % 10 = 9 2024-01-02
--   (older than the stored cell's: greatest() must keep the cell's).
-- Rows: about 1.32 x dpicks, 5.3 x rpicks, 1.32 x ppicks with one copy.
-- Leaves the deltas without fresh statistics: the caller ANALYZEs (or not).
\set ON_ERROR_STOP 1
SET work_mem = '256MB';
\if :{?truncate}
\else
\set truncate 1
\endif
\if :{?since}
\else
\set since 2024-01-01
\endif
\if :{?dcopies}
\else
\set dcopies 1
\endif
\if :{?rcopies}
\else
\set rcopies 1
\endif
\if :{?pcopies}
\else
\set pcopies 1
\endif
\if :truncate
TRUNCATE outreach.daily_deltas, outreach.regional_deltas, outreach.program_deltas;
\endif


CREATE TEMP TABLE dpick AS
SELECT c.*, abs(hashtext(c.day::text || c.institution_id || c.facility_id || c.metric || c.dims::text)) AS h
FROM outreach.daily_cells c WHERE c.value <> 0 AND c.day >= :'since' ORDER BY 10 LIMIT :dpicks;
INSERT INTO outreach.daily_deltas
SELECT CASE k WHEN 'new' THEN DATE '2026-12-05' + (h % 6)::int WHEN 'zero+' THEN DATE '2026-12-20'
              WHEN 'zero-' THEN DATE '2026-12-20' ELSE day END,
       institution_id, program_id, mission_id, facility_id, region_code, metric, dims,
       CASE k WHEN 'one' THEN CASE WHEN h % 50 = 1 THEN -value ELSE 100 END
              WHEN 'two' THEN 200 WHEN 'zero-' THEN -100 ELSE 100 END
FROM dpick, generate_series(1, :dcopies) b,
     LATERAL (VALUES ('one', b = 1), ('more', b > 1), ('two', b = 1 AND h % 4 = 0), ('new', b = 1 AND h % 20 = 3),
                     ('zero+', b = 1 AND h % 100 = 7), ('zero-', b = 1 AND h % 100 = 7)) v (k, on_)
WHERE on_;

CREATE TEMP TABLE anc AS
WITH RECURSIVE up (county, anc) AS (
    SELECT region_code, region_code FROM outreach.regions WHERE level = 'county'
    UNION ALL
    SELECT up.county, r.parent_code FROM up JOIN outreach.regions r ON r.region_code = up.anc
    WHERE r.parent_code IS NOT NULL)
SELECT up.county, up.anc, r.level FROM up JOIN outreach.regions r ON r.region_code = up.anc;
CREATE TEMP TABLE rpick AS
SELECT c.region_code, c.period_start AS day, c.metric, c.value,
       abs(hashtext(c.region_code || c.period_start::text || c.metric)) AS h
FROM outreach.regional_cells c
WHERE c.region_level = 'county' AND c.period_type = 'day' AND c.value <> 0 AND c.period_start >= :'since'
ORDER BY 5 LIMIT :rpicks;
INSERT INTO outreach.regional_deltas
SELECT a.anc, a.level,
       CASE k WHEN 'new' THEN DATE '2026-12-05' + (h % 6)::int WHEN 'zero+' THEN DATE '2026-12-20'
              WHEN 'zero-' THEN DATE '2026-12-20' ELSE day END,
       metric,
       CASE k WHEN 'one' THEN CASE WHEN h % 50 = 1 THEN -value ELSE 100 END
              WHEN 'two' THEN 200 WHEN 'zero-' THEN -100 ELSE 100 END,
       CASE WHEN h % 10 = 9 THEN TIMESTAMPTZ '2024-01-02 00:00+00'
            ELSE TIMESTAMPTZ '2026-12-05 10:00+00' + ((h + b) % 1000) * interval '1 second' END
FROM rpick JOIN anc a ON a.county = rpick.region_code, generate_series(1, :rcopies) b,
     LATERAL (VALUES ('one', b = 1), ('more', b > 1), ('two', b = 1 AND h % 4 = 0), ('new', b = 1 AND h % 20 = 3),
                     ('zero+', b = 1 AND h % 100 = 7), ('zero-', b = 1 AND h % 100 = 7)) v (k, on_)
WHERE on_;

CREATE TEMP TABLE ppick AS
SELECT c.program_id, c.period_start AS day, c.metric, c.value,
       abs(hashtext(c.program_id || c.period_start::text || c.metric)) AS h
FROM outreach.program_cells c
WHERE c.period_type = 'day' AND c.value <> 0 AND c.period_start >= :'since' ORDER BY 5 LIMIT :ppicks;
INSERT INTO outreach.program_deltas
SELECT program_id,
       CASE k WHEN 'new' THEN DATE '2026-12-05' + (h % 6)::int WHEN 'zero+' THEN DATE '2026-12-20'
              WHEN 'zero-' THEN DATE '2026-12-20' ELSE day END,
       metric,
       CASE k WHEN 'one' THEN CASE WHEN h % 50 = 1 THEN -value ELSE 100 END
              WHEN 'two' THEN 200 WHEN 'zero-' THEN -100 ELSE 100 END,
       CASE WHEN h % 10 = 9 THEN TIMESTAMPTZ '2024-01-02 00:00+00'
            ELSE TIMESTAMPTZ '2026-12-05 10:00+00' + ((h + b) % 1000) * interval '1 second' END
FROM ppick, generate_series(1, :pcopies) b,
     LATERAL (VALUES ('one', b = 1), ('more', b > 1), ('two', b = 1 AND h % 4 = 0), ('new', b = 1 AND h % 20 = 3),
                     ('zero+', b = 1 AND h % 100 = 7), ('zero-', b = 1 AND h % 100 = 7)) v (k, on_)
WHERE on_;
DROP TABLE dpick, anc, rpick, ppick;
RESET work_mem;
SELECT (SELECT count(*) FROM outreach.daily_deltas) AS daily_deltas,
       (SELECT count(*) FROM outreach.regional_deltas) AS regional_deltas,
       (SELECT count(*) FROM outreach.program_deltas) AS program_deltas;
