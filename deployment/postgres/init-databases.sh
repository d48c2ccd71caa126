#!/usr/bin/env bash
# Run by the postgres image on its first start (docker-entrypoint-initdb.d): one database per
# service, owned by POSTGRES_USER. Safe to re-run.
set -euo pipefail
for db in ${MLOPS_DATABASES:-model_registry feature_store experiment_tracking pipeline_orchestrator ab_testing model_serving}; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres --set db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
done
