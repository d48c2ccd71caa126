from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from feature_store import __version__
from feature_store.api.router import router as data_router
from feature_store.offline.materialize import fail_interrupted_jobs
from feature_store.online import close_online_store, open_online_store, ping_online_store
from feature_store.online.metrics import register_freshness
from feature_store.registry.router import router as registry_router
from feature_store.settings import FeatureStoreSettings
from feature_store.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def create_app(settings: FeatureStoreSettings | None = None) -> FastAPI:
    settings = settings or FeatureStoreSettings()
    return create_service_app(
        settings,
        ServiceSpec(
            title="Feature Store",
            version=__version__,
            description=(
                "Entities, versioned feature sets and feature services; ingestion into the offline "
                "store, push and materialization into the online store; online serving with TTL and "
                "point-in-time-correct training data."
            ),
            # the data plane first: the serving routes are matched before the registry's
            routers=[data_router, registry_router],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            uses_artifacts=False,
            on_startup=[open_online_store, fail_interrupted_jobs, register_freshness],
            on_shutdown=[close_online_store],
            ready_checks={"online_store": ping_online_store},
        ),
    )
