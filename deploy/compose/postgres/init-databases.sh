#!/bin/sh
# Runs once, when the PostgreSQL data volume is empty (docker-entrypoint-initdb.d): a role and
# databases for Temporal (its store and its visibility store), and a role and database for the
# service's read model. Passwords come from the container's environment (compose's .env).
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v sendmed_password="$SENDMED_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
CREATE ROLE sendmed LOGIN PASSWORD :'sendmed_password';
CREATE DATABASE sendmed OWNER sendmed;
SQL
