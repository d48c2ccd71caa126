from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from feature_store import __version__
from feature_store.api.router import router as data_router
from feature_store.offline.materialize import JobRunner, fail_interrupted_jobs
from feature_store.online import OnlineStore, build_online_store
from feature_store.online.metrics import FreshnessCollector, OnlineMetrics
from feature_store.online.serving import PlanCache, Serving
from feature_store.registry.router import router as registry_router
from feature_store.registry.views import ViewCache
from feature_store.settings import FeatureStoreSettings
from feature_store.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


async def start(app: FastAPI) -> None:
    """Everything the routes get as dependencies (feature_store.deps), made once per start."""
    state, settings = app.state, app.state.settings
    state.online = build_online_store(settings)
    fail_interrupted_jobs(state.db)
    state.views = ViewCache(settings.schema_cache_seconds)
    state.materialization = JobRunner(state.db)
    # the metrics registry outlives a restart of the same app: its collectors are made once
    if getattr(state, "online_metrics", None) is None:
        state.online_metrics = OnlineMetrics(state.metrics)
        state.freshness_collector = FreshnessCollector(state.db, state.metrics.service, state.online_metrics)
        state.metrics.registry.register(state.freshness_collector)
    state.freshness_collector.db = state.db
    plans = PlanCache(state.views, settings.schema_cache_seconds)
    state.serving = Serving(state.db, plans, state.online_metrics, settings)


async def stop(app: FastAPI) -> None:
    online: OnlineStore | None = getattr(app.state, "online", None)
    app.state.online = None
    if online is not None:
        await online.close()


async def ping_online_store(app: FastAPI) -> None:
    """`/ready`'s check of the online store (the kit bounds it in time)."""
    await app.state.online.ping()


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
            on_startup=[start],
            on_shutdown=[stop],
            ready_checks={"online_store": ping_online_store},
        ),
    )
