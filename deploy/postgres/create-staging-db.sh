#!/bin/sh
# Runs once, on the first start of an empty data volume (docker-entrypoint-initdb.d).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"${POSTGRES_STAGING_DB}\" OWNER \"${POSTGRES_USER}\""
