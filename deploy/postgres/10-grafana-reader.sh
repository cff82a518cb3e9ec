#!/bin/sh
# Runs once, when the Postgres volume is first initialised: a login role for
# Grafana in the read-only analyst role. `outreach migrate` (run by the
# pipeline at start) grants outreach_analyst SELECT on the analyst tables and
# views, and on consumer_offsets for the freshness panel; it cannot write.
# It sees no institution's rows until granted: the compose service
# grafana-grant runs `outreach grant-analyst grafana --all` after that.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE outreach_analyst NOLOGIN;
CREATE ROLE grafana LOGIN PASSWORD :'password' IN ROLE outreach_analyst;
SQL
