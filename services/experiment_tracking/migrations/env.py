"""Alembic environment: the kit runs it; this file names the metadata."""

from experiment_tracking.tables import Base
from mlops_kit.migration_env import run_migrations_online

run_migrations_online(Base.metadata)
