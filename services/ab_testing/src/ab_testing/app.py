from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from ab_testing import __version__
from ab_testing.api.results import router as results_router
from ab_testing.api.routing import router as routing_router
from ab_testing.experiments.router import router as experiments_router
from ab_testing.fastpath import RouteFastPath
from ab_testing.folding import Folder, tune_gc
from ab_testing.metrics import AbCollector
from ab_testing.rollouts.controller import RolloutController
from ab_testing.rollouts.router import router as rollouts_router
from ab_testing.routing import DefinitionCache, ExposureBuffer
from ab_testing.settings import AbTestingSettings
from ab_testing.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def create_app(settings: AbTestingSettings | None = None) -> FastAPI:
    settings = settings or AbTestingSettings()

    async def start(app: FastAPI) -> None:
        app.state.settings = settings
        tune_gc()
        app.state.definitions = DefinitionCache(app.state.db, settings.definition_cache_seconds)
        app.state.exposures = ExposureBuffer(
            app.state.db, settings.exposure_flush_seconds, settings.exposure_buffer_max, audit_log
        )
        await app.state.exposures.start()
        app.state.folder = Folder(
            app.state.db,
            settings.fold_chunk_events,
            settings.fold_interval_seconds,
            shards=settings.fold_shards,
            in_process=settings.fold_in_process,
        )
        await app.state.folder.start()
        app.state.rollouts = RolloutController(
            app.state.db,
            settings.controller_interval_seconds,
            invalidate=app.state.definitions.invalidate,
            read_fold_seconds=settings.read_fold_seconds,
        )
        await app.state.rollouts.start()
        if getattr(app.state, "ab_collector", None) is None:
            app.state.ab_collector = AbCollector(app.state.db, settings.service_name)
            app.state.metrics.registry.register(app.state.ab_collector)
        app.state.ab_collector.db = app.state.db

    async def stop(app: FastAPI) -> None:
        rollouts = getattr(app.state, "rollouts", None)
        if rollouts is not None:
            await rollouts.stop()
        folder = getattr(app.state, "folder", None)
        if folder is not None:
            await folder.stop()
        exposures = getattr(app.state, "exposures", None)
        if exposures is not None:
            await exposures.stop()

    return create_service_app(
        settings,
        ServiceSpec(
            title="A/B Testing",
            version=__version__,
            description=(
                "Experiments with deterministic, stateless routing (FNV-1a hash v2, reproducible in any "
                "language); outcome events folded into sufficient statistics; frequentist, sequential and "
                "Bayesian analysis with CUPED, multiple-testing correction and SRM checks; Thompson-sampling "
                "bandits; canary rollouts that promote or roll back model versions in the registry."
            ),
            routers=[routing_router, experiments_router, results_router, rollouts_router],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            uses_artifacts=False,
            on_startup=[start],
            on_shutdown=[stop],
            inner_middleware=[RouteFastPath],
        ),
    )
