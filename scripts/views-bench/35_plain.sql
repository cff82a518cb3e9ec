-- The plain tables: what the batch SQL rebuild (sink/src/postgres/
-- alternative.sql) leaves, the same rows as the views (read from 0006's
-- views, whose plan does not depend on the deltas' statistics; 40_check
-- compares them with the new views), with its keys and indexes:
-- the cells' key as primary key / UNIQUE NULLS NOT DISTINCT, daily's two
-- secondary indexes (region_code, day) and (program_id, day), default
-- fillfactor. Rebuilt for each state, so that they hold that state's rows.
\set ON_ERROR_STOP 1
SET work_mem = '256MB';
SET maintenance_work_mem = '512MB';
DROP TABLE IF EXISTS plain.daily_metrics, plain.regional_metrics, plain.program_metrics;
CREATE TABLE plain.daily_metrics AS SELECT * FROM v6.daily_metrics ORDER BY day, institution_id;
ALTER TABLE plain.daily_metrics
    ADD CONSTRAINT daily_metrics_cell UNIQUE NULLS NOT DISTINCT
        (day, institution_id, program_id, mission_id, facility_id, region_code, metric, dims);
CREATE INDEX daily_metrics_region ON plain.daily_metrics (region_code, day);
CREATE INDEX daily_metrics_program ON plain.daily_metrics (program_id, day);
CREATE TABLE plain.regional_metrics AS SELECT * FROM v6.regional_metrics
ORDER BY region_code, period_type, period_start, metric;
ALTER TABLE plain.regional_metrics ADD PRIMARY KEY (region_code, period_type, period_start, metric);
CREATE TABLE plain.program_metrics AS SELECT * FROM v6.program_metrics
ORDER BY program_id, period_type, period_start, metric;
ALTER TABLE plain.program_metrics ADD PRIMARY KEY (program_id, period_type, period_start, metric);
VACUUM ANALYZE plain.daily_metrics, plain.regional_metrics, plain.program_metrics;
