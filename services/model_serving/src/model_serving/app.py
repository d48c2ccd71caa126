from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI
from mlops_client import AbTestingClient, Batching, MonitoringClient, RegistryClient
from mlops_kit.app import ServiceSpec, create_service_app

from model_serving import __version__
from model_serving.deployments import repository as deployments_repo
from model_serving.deployments import service as deployments
from model_serving.deployments.router import router as deployments_router
from model_serving.metrics import RuntimeCollector, ServingMetrics
from model_serving.predict.outcomes import router as outcomes_router
from model_serving.predict.router import router as predict_router
from model_serving.predict.service import Predictor
from model_serving.runtime.exposures import ExposureSender
from model_serving.runtime.features import FeatureLookup
from model_serving.runtime.loop import RuntimeLoop
from model_serving.runtime.manager import Runtime
from model_serving.runtime.state import Spec
from model_serving.settings import ServingSettings
from model_serving.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def _headers(settings: ServingSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}


def _timeout(settings: ServingSettings) -> httpx.Timeout:
    return httpx.Timeout(settings.peer_read_timeout_seconds, connect=settings.peer_connect_timeout_seconds)


def _cache(settings: ServingSettings) -> Path:
    return Path(settings.model_cache_dir) if settings.model_cache_dir else settings.service_dir / "models"


def _start(settings: ServingSettings):  # type: ignore[no-untyped-def]
    async def start(app: FastAPI) -> None:
        db = app.state.db

        def read_specs() -> list[Spec]:
            with db.session(write=False) as session:
                return deployments.specs(deployments_repo.all_deployments(session))

        peer = {"api_key": settings.api_key, "timeout": settings.peer_read_timeout_seconds}
        registry = RegistryClient(settings.model_registry_url, retries=1, **peer)
        ab = AbTestingClient(settings.ab_testing_url, retries=1, **peer)
        metrics = ServingMetrics(app.state.metrics)
        runtime = Runtime(
            read_specs,
            registry,
            ab,
            _cache(settings),
            experiments_every=settings.resync_seconds,
            retry_max=settings.load_retry_max_seconds,
            on_swap=metrics.swapped,
        )
        batching = Batching(
            batch_size=settings.log_batch_size,
            flush_interval=settings.log_flush_seconds,
            max_queue=settings.log_queue_size,
            on_full="drop_oldest",
            close_timeout=5.0,
        )
        monitoring = MonitoringClient(settings.model_registry_url, batching=batching, retries=1, **peer)
        app.state.ab_http = httpx.Client(
            base_url=settings.ab_testing_url, headers=_headers(settings), timeout=_timeout(settings)
        )
        feature_http = httpx.AsyncClient(
            base_url=settings.feature_store_url, headers=_headers(settings), timeout=_timeout(settings)
        )
        predictor = Predictor(
            monitoring,
            ExposureSender(app.state.ab_http),
            FeatureLookup(feature_http, settings.feature_timeout_seconds),
            settings.shadow_queue_size,
        )
        predictor.counted, predictor.model_seconds = metrics.counted, metrics.timed

        def log_stats() -> tuple[int, int]:
            stats = monitoring.stats()
            return stats.queued + stats.in_flight, stats.dropped

        app.state.metrics.registry.register(
            RuntimeCollector(app.state.metrics.service, runtime, predictor, log_stats)
        )
        app.state.serving_metrics = metrics
        app.state.runtime, app.state.predictor = runtime, predictor
        app.state.clients = (registry, ab, feature_http)
        app.state.runtime_loop = RuntimeLoop(runtime, settings.watch_seconds)
        await app.state.runtime_loop.start()

    return start


async def _stop(app: FastAPI) -> None:
    await app.state.runtime_loop.stop()
    predictor: Predictor = app.state.predictor
    if predictor.exposures is not None:
        predictor.exposures.close()
    if predictor.monitoring is not None:
        predictor.monitoring.close(timeout=5.0)
    registry, ab, feature_http = app.state.clients
    registry.close()
    ab.close()
    app.state.ab_http.close()
    await feature_http.aclose()


async def _models_ready(app: FastAPI) -> None:
    runtime: Runtime = app.state.runtime
    if not runtime.ready():
        waiting = [n for n, lv in runtime.live.items() if lv.current is None]
        raise RuntimeError(f"no model loaded yet for {', '.join(waiting)}")


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or ServingSettings()
    app = create_service_app(
        settings,
        ServiceSpec(
            title="Model Serving",
            version=__version__,
            description="Registered models behind a prediction API: deployments, hot swap on alias moves, "
            "canary-aware routing, online features, every prediction monitored.",
            routers=[deployments_router, predict_router, outcomes_router],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            uses_artifacts=False,
            on_startup=[_start(settings)],
            on_shutdown=[_stop],
            ready_checks={"models": _models_ready},
        ),
    )
    return app
