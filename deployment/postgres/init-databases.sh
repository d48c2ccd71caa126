#!/usr/bin/env bash
# Creates one database per service on the compose PostgreSQL's first start.
set -euo pipefail
for db in model_registry feature_store experiment_tracking pipeline_orchestrator ab_testing; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "SELECT 'CREATE DATABASE $db' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec"
done
