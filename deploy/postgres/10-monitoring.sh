#!/bin/sh
# Runs once, when the postgres container creates its data directory: the exporter's monitoring
# role as the README describes it, and pg_stat_statements in the tmi database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$(cat /run/secrets/monitor_password)" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE ROLE tmi_monitor LOGIN PASSWORD :'pw' IN ROLE pg_monitor;
GRANT CONNECT ON DATABASE tmi TO tmi_monitor;
-- schema_migrations and the sequences are created later by TMI (here: demo-load) as tmi_user;
-- the exporter needs to read the migration version and see the sequences' positions.
ALTER DEFAULT PRIVILEGES FOR ROLE tmi_user IN SCHEMA public GRANT SELECT ON TABLES TO tmi_monitor;
ALTER DEFAULT PRIVILEGES FOR ROLE tmi_user IN SCHEMA public GRANT USAGE ON SEQUENCES TO tmi_monitor;
SQL
