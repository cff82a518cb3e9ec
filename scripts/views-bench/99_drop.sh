#!/bin/sh
# Drop the scratch database and the four roles (cluster-wide) made by 05_roles.sql.
DB=${DB:-outreach_views_bench}
dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
psql -h 127.0.0.1 -U postgres -X -q -c "DROP ROLE IF EXISTS vb_scoped, vb_all, vb_analyst, vb_writer"
