from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from model_registry import __version__
from model_registry.aliases.router import router as aliases_router
from model_registry.artifacts.router import router as artifacts_router
from model_registry.models.router import router as models_router
from model_registry.monitoring.alert_router import router as monitoring_alerts_router
from model_registry.monitoring.alert_router import setup_router as monitoring_setup_router
from model_registry.monitoring.evaluator import Evaluator
from model_registry.monitoring.maintenance import Maintenance, Retention
from model_registry.monitoring.metrics import MonitoringCollector
from model_registry.monitoring.router import router as monitoring_router
from model_registry.settings import RegistrySettings
from model_registry.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def _retention(settings: RegistrySettings) -> Retention:
    return Retention(
        raw=timedelta(days=settings.monitoring_raw_retention_days),
        labels=timedelta(days=settings.monitoring_label_retention_days),
        aggregates=timedelta(days=settings.monitoring_aggregate_retention_days),
        sample_rows=settings.monitoring_bucket_sample_rows,
    )


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()

    async def start(app: FastAPI) -> None:
        app.state.monitoring_evaluator = Evaluator(
            app.state.db,
            poll_seconds=settings.monitoring_poll_seconds,
            lease_seconds=settings.monitoring_lease_seconds,
        )
        if settings.monitoring_evaluator:
            await app.state.monitoring_evaluator.start()
        if getattr(app.state, "monitoring_collector", None) is None:
            app.state.monitoring_collector = MonitoringCollector(
                app.state.db,
                settings.service_name,
                cache_seconds=settings.monitoring_metrics_cache_seconds,
                max_features=settings.monitoring_metric_features,
            )
            app.state.metrics.registry.register(app.state.monitoring_collector)
        app.state.monitoring_collector.db = app.state.db

        app.state.monitoring_retention = _retention(settings)
        interval = settings.monitoring_maintenance_interval_seconds
        app.state.monitoring_maintenance = Maintenance(app.state.db, app.state.monitoring_retention, interval)
        await app.state.monitoring_maintenance.start()

    async def stop(app: FastAPI) -> None:
        await app.state.monitoring_maintenance.stop()
        evaluator = getattr(app.state, "monitoring_evaluator", None)
        if evaluator is not None:
            await evaluator.stop()

    return create_service_app(
        settings,
        ServiceSpec(
            title="Model Registry",
            version=__version__,
            description="Versions, artifacts, aliases and stages, lineage.",
            routers=[
                models_router,
                artifacts_router,
                aliases_router,
                monitoring_router,
                monitoring_alerts_router,
                monitoring_setup_router,
            ],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            on_startup=[start],
            on_shutdown=[stop],
        ),
    )
