"""Alembic environment: the kit runs it; this file names the metadata."""

from mlops_kit.migration_env import run_migrations_online
from model_serving.tables import Base

run_migrations_online(Base.metadata)
