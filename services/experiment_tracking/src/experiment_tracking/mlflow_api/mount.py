"""Where MLflow clients look: `/api/2.0/mlflow/...` (and the UI's `/ajax-api/2.0/mlflow/...`)."""

from __future__ import annotations

from fastapi import APIRouter
from mlops_kit.errors import error_responses

from experiment_tracking.mlflow_api import artifacts, logged_models, router
from experiment_tracking.mlflow_api.answers import MlflowError, ServerInfo

# errors under the MLflow prefixes come in MLflow's shape (mlflow_api/errors.py)
MLFLOW_ERRORS = error_responses(MlflowError)


def _under(prefix: str, *, in_schema: bool) -> APIRouter:
    mounted = APIRouter(prefix=prefix, include_in_schema=in_schema, responses=MLFLOW_ERRORS)
    mounted.include_router(router.router)
    mounted.include_router(logged_models.router)
    mounted.include_router(artifacts.list_router)
    return mounted


server_info = APIRouter(prefix="/api/3.0/mlflow", tags=["MLflow REST API"], responses=MLFLOW_ERRORS)


@server_info.get("/server-info", response_model=ServerInfo)
async def get_server_info() -> dict[str, object]:
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {},
    }


ROUTERS = [
    _under("/api/2.0/mlflow", in_schema=True),
    _under("/ajax-api/2.0/mlflow", in_schema=False),
    artifacts.router,
    server_info,
]
