#!/bin/sh
# Scratch database with the Postgres migrations applied as sqlx would (each
# file in its own transaction), then the roles of roles.rs::grant and two
# analyst logins as `outreach grant-analyst` makes them. Re-runnable:
#   sh 00_create.sh && psql ... -f 10_fill.sql && python3 20_bench.py
set -eu
DB=${DB:-outreach_sb_bench}
REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}
PSQL="psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1"
dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
createdb -h 127.0.0.1 -U postgres "$DB"
$PSQL -d "$DB" -c "CREATE TABLE public._sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
  installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL)"
for f in "$REPO"/sink/migrations/postgres/*.sql; do
  v=$(basename "$f" | sed 's/_.*//; s/^0*//')
  echo "apply $(basename "$f")"
  $PSQL -d "$DB" -1 -f "$f"
  $PSQL -d "$DB" -c "INSERT INTO public._sqlx_migrations VALUES ($v, '$(basename "$f" .sql)', now(), true, '\\x00', 0)"
done
$PSQL -d "$DB" -f "$(dirname "$0")/05_roles.sql"
