#!/bin/sh
# Scratch database with the Postgres migrations applied as sqlx would (each
# file in its own transaction, recorded in _sqlx_migrations), then the roles
# of roles.rs::grant and two analyst logins (05_roles.sql).
#
#   UPTO=6 sh 00_create.sh    # stop after 0006: a plain "old views" database
#   sh 00_create.sh           # default: 0001-0006, then 15_keep_old_views.sql
#                             # copies 0006's three views into schema v6, then
#                             # 0007 onwards: old and new views side by side,
#                             # over the same tables (one data set, one cache)
set -eu
DB=${DB:-outreach_views_bench}
UPTO=${UPTO:-9999}
KEEP_OLD=${KEEP_OLD:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=${REPO:-$(cd "$HERE/../.." && pwd)}
PSQL="psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1"
dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
createdb -h 127.0.0.1 -U postgres "$DB"
$PSQL -d "$DB" -c "CREATE TABLE public._sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
  installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL, execution_time bigint NOT NULL)"
kept=0
# The candidate views (not a migration of the repository: measured and left
# out, docs/performance.md) come after the repository's migrations.
for f in "$REPO"/sink/migrations/postgres/*.sql "$HERE/candidate_0007.sql"; do
  v=$(basename "$f" | sed 's/^candidate_//; s/\.sql$//; s/_.*//; s/^0*//')
  [ "$v" -le "$UPTO" ] || break
  if [ "$v" -ge 7 ] && [ "$KEEP_OLD" = 1 ] && [ $kept = 0 ]; then
    echo "keep 0006's views as v6.*"
    $PSQL -d "$DB" -1 -f "$HERE/15_keep_old_views.sql"
    kept=1
  fi
  echo "apply $(basename "$f")"
  $PSQL -d "$DB" -1 -f "$f"
  $PSQL -d "$DB" -c "INSERT INTO public._sqlx_migrations VALUES ($v, '$(basename "$f" .sql)', now(), true, '\\x00', 0)"
done
$PSQL -d "$DB" -f "$HERE/05_roles.sql"
