from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from mlops_kit.app import ServiceSpec, create_service_app

from experiment_tracking import __version__
from experiment_tracking.artifacts.router import router as artifacts_router
from experiment_tracking.experiments.router import router as experiments_router
from experiment_tracking.mlflow_api import errors as mlflow_errors
from experiment_tracking.mlflow_api.mount import ROUTERS as MLFLOW_ROUTERS
from experiment_tracking.runs.router import router as runs_router
from experiment_tracking.settings import TrackingSettings
from experiment_tracking.tables import audit_log

# installed wheels carry the migrations inside the package; a source checkout keeps them beside src/
_HERE = Path(__file__).resolve().parent
MIGRATIONS = _HERE / "migrations" if (_HERE / "migrations").is_dir() else _HERE.parents[1] / "migrations"


def create_app(settings: TrackingSettings | None = None) -> FastAPI:
    settings = settings or TrackingSettings()
    return create_service_app(
        settings,
        ServiceSpec(
            title="Experiment Tracking",
            version=__version__,
            description=(
                "Experiments, runs, params, metric histories and artifacts. Native API under `/api/`; "
                "the MLflow tracking REST API under `/api/2.0/mlflow/` (point `MLFLOW_TRACKING_URI` here)."
            ),
            # the MLflow API first: its logging routes are the hot path, and route matching is linear
            routers=[*MLFLOW_ROUTERS, experiments_router, runs_router, artifacts_router],
            audit_table=audit_log,
            migrations=MIGRATIONS,
            error_renderer=mlflow_errors.render,
        ),
    )
