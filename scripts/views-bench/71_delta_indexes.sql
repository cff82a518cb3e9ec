-- Indexes on the deltas for the anti-join's probes (an experiment: the
-- deltas have none in 0003/0004, so that a batch's COPY stays cheap).
-- With them, a nested-loop anti-join, which the planner picks when it
-- believes the deltas empty, probes by key instead of rescanning every
-- pending delta for each stored cell.
CREATE INDEX IF NOT EXISTS regional_deltas_probe ON outreach.regional_deltas (region_code, metric, day);
CREATE INDEX IF NOT EXISTS program_deltas_probe ON outreach.program_deltas (program_id, metric, day);
CREATE INDEX IF NOT EXISTS daily_deltas_probe ON outreach.daily_deltas (day, institution_id, program_id);
