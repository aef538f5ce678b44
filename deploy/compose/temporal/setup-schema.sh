#!/bin/sh
# Temporal's schema in PostgreSQL (admin-tools image, temporal-sql-tool). The databases exist
# already (postgres/init-databases.sh). Safe to repeat: setup-schema leaves an existing schema
# as it is, and update-schema applies only the versions a database lacks — which is also how a
# newer server image's schema changes arrive.
set -eu

SCHEMA=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
    dir=$SCHEMA/temporal/versioned
    [ "$db" = temporal_visibility ] && dir=$SCHEMA/visibility/versioned
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" --db "$db" setup-schema -v 0.0
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" --db "$db" update-schema -d "$dir"
done
echo "Temporal schema is up to date"
