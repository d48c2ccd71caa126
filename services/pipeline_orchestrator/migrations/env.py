"""Alembic environment: the kit runs it; this file names the metadata."""

from mlops_kit.migration_env import run_migrations_online
from pipeline_orchestrator.retraining import tables as retraining_tables  # noqa: F401 (their metadata)
from pipeline_orchestrator.tables import Base

run_migrations_online(Base.metadata)
