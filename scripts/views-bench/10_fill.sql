-- Realistic volume, generated in SQL. 50 institutions (h01..h50), 6
-- programs, a region tree CN > 5 provinces > 30 prefectures > 180 counties;
-- each institution works at 4 host facilities (one county each) on ~60% of
-- the days from 2024-01-01 to 2026-12-04, ~19 cells per active facility-day
-- (the catalogue's metrics with their dims), plus the mission metrics.
-- regional_cells and program_cells are the roll-ups of the same cells;
-- small pending deltas; missions; quarantine; offsets.
\set ON_ERROR_STOP 1
\timing on
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';

TRUNCATE outreach.daily_cells, outreach.daily_deltas, outreach.regional_cells, outreach.regional_deltas,
         outreach.program_cells, outreach.program_deltas, outreach.missions, outreach.quarantine,
         outreach.consumer_offsets, outreach.programs;
DELETE FROM outreach.regions;

-- Regions -------------------------------------------------------------------
INSERT INTO outreach.regions VALUES ('CN', 'China', 'country', NULL);
INSERT INTO outreach.regions
SELECT p || '0000', 'Province ' || p, 'province', 'CN' FROM unnest(ARRAY['53','62','63','64','65']) p;
INSERT INTO outreach.regions
SELECT p || lpad(k::text, 2, '0') || '00', 'Prefecture ' || p || k, 'prefecture', p || '0000'
FROM unnest(ARRAY['53','62','63','64','65']) p, generate_series(1, 6) k;
INSERT INTO outreach.regions
SELECT left(r.region_code, 4) || (20 + k)::text, 'County ' || left(r.region_code, 4) || (20 + k), 'county', r.region_code
FROM outreach.regions r, generate_series(1, 6) k WHERE r.level = 'prefecture';

CREATE TEMP TABLE county AS
SELECT row_number() OVER (ORDER BY region_code) - 1 AS n, region_code FROM outreach.regions WHERE level = 'county';
-- county -> itself and every ancestor
CREATE TEMP TABLE closure AS
WITH RECURSIVE up(county, anc) AS (
    SELECT region_code, region_code FROM outreach.regions WHERE level = 'county'
    UNION ALL
    SELECT up.county, r.parent_code FROM up JOIN outreach.regions r ON r.region_code = up.anc WHERE r.parent_code IS NOT NULL)
SELECT up.county, up.anc, r.level FROM up JOIN outreach.regions r ON r.region_code = up.anc;

INSERT INTO outreach.programs SELECT 'prog-' || k, 'Programme ' || k FROM generate_series(1, 6) k;

-- Institutions and their facilities -------------------------------------------
CREATE TEMP TABLE spec AS
SELECT row_number() OVER () - 1 AS n, s FROM unnest(ARRAY['cardiology','respiratory','gastroenterology',
 'endocrinology','nephrology','hematology','oncology','pathology','obstetrics_gynecology','pediatrics',
 'neonatology','general_surgery','orthopedics','urology','neurology','ophthalmology','ent','critical_care',
 'emergency','radiology','ultrasound','anesthesiology','dermatology','psychiatry','rehabilitation',
 'traditional_chinese_medicine','nursing','general_practice','management','other']) s;
CREATE TEMP TABLE inst AS
SELECT i, 'h' || lpad(i::text, 2, '0') AS id, 'prog-' || (i % 6 + 1) AS program,
       (SELECT s FROM spec WHERE n = i % 30) AS s1, (SELECT s FROM spec WHERE n = (i * 7 + 1) % 30) AS s2
FROM generate_series(1, 50) i;
CREATE TEMP TABLE fac AS
SELECT inst.i, k, c.region_code AS county, 'fac-' || c.region_code || '-' || inst.id AS facility_id
FROM inst, generate_series(0, 3) k JOIN county c ON true
WHERE c.n = (inst.i * 7 + k * 37) % 180;

-- Cell templates: metric, whether it carries the institution's specialty, the other dim.
CREATE TEMP TABLE tmpl (t int, metric text, spec int, key2 text, val2 text, remote bool, every int);
INSERT INTO tmpl VALUES
 (1,'outpatient_visits',1,'setting','clinic',false,1), (2,'outpatient_visits',1,'setting','free_clinic',false,1),
 (3,'outpatient_visits',1,'setting','ward',false,1), (4,'outpatient_visits',1,'setting','home_visit',false,1),
 (5,'outpatient_visits',2,'setting','clinic',false,1),
 (6,'surgeries',1,'role','performed',false,1), (7,'surgeries',1,'role','assisted',false,1),
 (8,'surgeries',1,'role','supervised',false,1),
 (9,'expert_days',0,NULL,NULL,false,1),
 (10,'staff_trained',0,'cadre','physician',false,1), (11,'staff_trained',0,'cadre','nurse',false,1),
 (12,'staff_trained',0,'cadre','technician',false,1),
 (13,'teaching_rounds',1,NULL,NULL,false,1), (14,'lectures',1,NULL,NULL,false,1),
 (15,'complex_case_consultations',1,'mode','onsite',false,1), (16,'complex_case_consultations',1,'mode','remote',false,1),
 (17,'telemedicine_sessions',0,'kind','consultation',true,1), (18,'telemedicine_sessions',0,'kind','imaging',true,1),
 (19,'medicines_donated_value',0,NULL,NULL,false,1),
 (20,'techniques_introduced',1,'gap_level','county',false,20), (21,'techniques_localized',1,NULL,NULL,false,30);

INSERT INTO outreach.daily_cells
SELECT d.day, inst.id, inst.program,
       CASE WHEN t.remote THEN NULL
            ELSE 'm-' || inst.id || '-' || f.k || '-' || to_char(d.day, 'YYYY"q"Q') END,
       f.facility_id, f.county, t.metric,
       (CASE t.spec WHEN 1 THEN jsonb_build_object('specialty', inst.s1)
                    WHEN 2 THEN jsonb_build_object('specialty', inst.s2) ELSE '{}'::jsonb END)
         || CASE WHEN t.key2 IS NULL THEN '{}'::jsonb ELSE jsonb_build_object(t.key2, t.val2) END,
       CASE WHEN t.metric = 'medicines_donated_value' THEN ((inst.i * 131 + d.n * 17) % 50000 + 1)
            ELSE ((inst.i * 7 + f.k * 3 + d.n * 11 + t.t * 5) % 23 + 1) * 100 END
FROM (SELECT day::date, row_number() OVER (ORDER BY day) AS n
      FROM generate_series('2024-01-01'::date, '2026-12-04', '1 day') day) d
CROSS JOIN inst JOIN fac f ON f.i = inst.i CROSS JOIN tmpl t
WHERE (inst.i * 31 + f.k * 17 + d.n * 13) % 10 < 6
  AND (inst.i + f.k + d.n) % t.every = 0
ORDER BY d.day, inst.id;

-- Mission metrics: each (institution, facility, quarter) is one mission.
INSERT INTO outreach.missions
SELECT 'm-' || inst.id || '-' || f.k || '-' || to_char(q, 'YYYY"q"Q'), inst.id, inst.program, f.facility_id, f.county,
       3 + (inst.i + f.k) % 5, ARRAY[inst.s1, inst.s2], q::date, (q + interval '3 months - 1 day')::date,
       CASE WHEN q + interval '3 months' <= '2026-12-04' THEN (q + interval '3 months - 1 day')::date END,
       CASE WHEN q + interval '3 months' <= '2026-12-04' THEN 'completed' ELSE 'active' END
FROM inst JOIN fac f ON f.i = inst.i, generate_series('2024-01-01'::date, '2026-10-01', '3 months') q;
INSERT INTO outreach.daily_cells
SELECT start_date, institution_id, program_id, mission_id, host_facility_id, region_code, m.metric, '{}'::jsonb, m.v * 100
FROM outreach.missions, LATERAL (VALUES ('missions_dispatched', 1), ('experts_dispatched', team_size)) m (metric, v)
UNION ALL
SELECT end_date, institution_id, program_id, mission_id, host_facility_id, region_code, 'missions_completed', '{}'::jsonb, 100
FROM outreach.missions WHERE end_date IS NOT NULL
ON CONFLICT DO NOTHING;

-- Pending deltas: what the last batches appended since the last fold.
INSERT INTO outreach.daily_deltas
SELECT day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims, 100
FROM outreach.daily_cells WHERE day >= '2026-12-01' AND metric IN ('outpatient_visits', 'surgeries');

-- Roll-ups of the same cells ----------------------------------------------------
CREATE TEMP TABLE cd AS
SELECT region_code, program_id, day, metric, sum(value) AS value FROM outreach.daily_cells
GROUP BY 1, 2, 3, 4;
CREATE TEMP TABLE rd AS
SELECT c.anc AS region_code, c.level, cd.day, cd.metric, sum(cd.value) AS value
FROM cd JOIN closure c ON c.county = cd.region_code GROUP BY 1, 2, 3, 4;
INSERT INTO outreach.regional_cells
SELECT rd.region_code, rd.level, p.period_type, p.period_start, rd.metric, sum(rd.value),
       p.period_start + interval '1 day' * (1 + (hashtext(rd.region_code || rd.metric) & 7))
FROM rd CROSS JOIN LATERAL outreach.period_starts(rd.day) p
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 3, 4, 5;
INSERT INTO outreach.program_cells
SELECT cd.program_id, p.period_type, p.period_start, cd.metric, sum(cd.value),
       p.period_start + interval '1 day' * (1 + (hashtext(cd.program_id || cd.metric) & 7))
FROM cd CROSS JOIN LATERAL outreach.period_starts(cd.day) p
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
INSERT INTO outreach.regional_deltas
SELECT c.anc, c.level, d.day, d.metric, sum(d.value), now()
FROM outreach.daily_deltas d JOIN closure c ON c.county = d.region_code GROUP BY 1, 2, 3, 4;
INSERT INTO outreach.program_deltas
SELECT program_id, day, metric, sum(value), now() FROM outreach.daily_deltas GROUP BY 1, 2, 3;

-- Quarantine and offsets ------------------------------------------------------
INSERT INTO outreach.quarantine
SELECT '2024-01-01'::timestamptz + (n * interval '1 hour' * 26304 / 40000), 'outreach.activity.v1', n % 12, n,
       convert_to('h' || lpad((n % 50 + 1)::text, 2, '0'), 'UTF8'),
       convert_to('{"institution_id":"h' || lpad((n % 50 + 1)::text, 2, '0') || '","n":' || n || ',"pad":"' || repeat('x', 300) || '"}', 'UTF8'),
       (ARRAY['schema','unknown_region','unknown_metric','bad_dims','too_late','parse'])[n % 6 + 1],
       'detail of error ' || n
FROM generate_series(1, 40000) n;
INSERT INTO outreach.consumer_offsets
SELECT t, p, 1000000 + p, now() - interval '3 seconds' * p FROM unnest(ARRAY['outreach.activity.v1','outreach.missions.v1']) t, generate_series(0, 11) p;

VACUUM ANALYZE;
SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables
WHERE schemaname = 'outreach' ORDER BY n_live_tup DESC;
