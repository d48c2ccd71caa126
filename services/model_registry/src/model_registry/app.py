from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from model_registry import __version__
from model_registry.aliases.router import router as aliases_router
from model_registry.artifacts.router import router as artifacts_router
from model_registry.models.router import router as models_router
from model_registry.monitoring.router import router as monitoring_router
from model_registry.settings import RegistrySettings
from model_registry.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    return create_service_app(
        settings,
        ServiceSpec(
            title="Model Registry",
            version=__version__,
            description="Versions, artifacts, aliases and stages, lineage.",
            routers=[models_router, artifacts_router, aliases_router, monitoring_router],
            audit_table=audit_log,
            migrations=MIGRATIONS,
        ),
    )
