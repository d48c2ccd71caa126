from __future__ import annotations

from pathlib import Path

import anyio
from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.errors import error_responses

from pipeline_orchestrator import __version__
from pipeline_orchestrator.engine.core import Engine
from pipeline_orchestrator.engine.metrics import QueueCollector
from pipeline_orchestrator.executors import build_executor
from pipeline_orchestrator.pipelines.router import router as pipelines_router
from pipeline_orchestrator.retraining.monitor import RetrainingMonitor
from pipeline_orchestrator.retraining.peers import RegistryMonitoring
from pipeline_orchestrator.retraining.router import router as retraining_router
from pipeline_orchestrator.runs.router import router as runs_router
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.tables import audit_log
from pipeline_orchestrator.triggers.router import alertmanager_router
from pipeline_orchestrator.triggers.router import router as triggers_router
from pipeline_orchestrator.uploads.router import router as uploads_router
from pipeline_orchestrator.worker_api.router import router as workers_router

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def create_app(settings: OrchestratorSettings | None = None) -> FastAPI:
    settings = settings or OrchestratorSettings()

    async def start_engine(app: FastAPI) -> None:
        app.state.settings = settings
        app.state.engine = Engine(settings, app.state.db, build_executor(settings), app.state.metrics)
        if getattr(app.state, "queue_collector", None) is None:
            app.state.queue_collector = QueueCollector(app.state.db, settings.service_name)
            app.state.metrics.registry.register(app.state.queue_collector)
        app.state.queue_collector.db = app.state.db
        await app.state.engine.start()
        registry = RegistryMonitoring(
            settings.model_registry_url,
            api_key=settings.api_key,
            connect_timeout=settings.peer_connect_timeout_seconds,
            read_timeout=settings.peer_read_timeout_seconds,
        )
        app.state.retraining = RetrainingMonitor(
            app.state.db,
            registry,
            app.state.engine.wake_many,
            poll_seconds=settings.retraining_poll_seconds,
            lease_seconds=settings.retraining_lease_seconds,
        )
        await app.state.retraining.start()

    async def check_executor(app: FastAPI) -> None:
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            await anyio.to_thread.run_sync(engine.executor.check, abandon_on_cancel=True)

    async def stop_engine(app: FastAPI) -> None:
        monitor = getattr(app.state, "retraining", None)
        if monitor is not None:
            await monitor.stop()
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            await engine.stop()

    app = create_service_app(
        settings,
        ServiceSpec(
            title="Pipeline Orchestrator",
            version=__version__,
            description=(
                "Versioned DAG pipelines of python, shell, http, platform and hyper-parameter-search "
                "tasks; durable runs with retries, caching, leases and logs; cron schedules, "
                "webhooks and AlertManager triggers; retraining policies fed by model monitoring; "
                "local, Celery and Kubernetes executors."
            ),
            routers=[
                pipelines_router,
                runs_router,
                triggers_router,
                workers_router,
                retraining_router,
                uploads_router,
            ],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            uses_artifacts=True,
            on_startup=[start_engine],
            on_shutdown=[stop_engine],
            ready_checks={"executor": check_executor},
        ),
    )
    app.include_router(alertmanager_router, responses=error_responses())
    return app
