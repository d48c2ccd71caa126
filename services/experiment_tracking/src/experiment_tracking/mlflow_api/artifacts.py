"""MLflow's artifact proxy (`mlflow-artifacts:` URIs): streamed up and down through the kit's store."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from mlops_kit.bounds import PathLong
from mlops_kit.deps import SessionDep, StoreDep
from mlops_kit.errors import JsonResponse, error_responses
from mlops_kit.limits import upload_limit
from mlops_kit.openapi import ANY_TYPE, answers, file_responses

from experiment_tracking.artifacts import service
from experiment_tracking.mlflow_api.answers import ArtifactFiles, Empty, MlflowError
from experiment_tracking.mlflow_api.params import query, run_id
from experiment_tracking.runs import service as runs

router = APIRouter(
    prefix="/api/2.0/mlflow-artifacts/artifacts",
    tags=["MLflow artifact proxy"],
    responses=error_responses(MlflowError),
)
list_router = APIRouter(tags=["MLflow REST API"])


@router.get("", responses=answers(ArtifactFiles))
def list_artifacts(request: Request, store: StoreDep) -> JsonResponse:
    path = query(request).get("path") or ""
    prefix = service.check_path(path) if path.strip("/") else ""
    files = service.listing(store, prefix)
    return JsonResponse({"files": files} if files else {})


@router.put("/{path:path}", responses=answers(Empty))
async def upload_artifact(path: PathLong, request: Request, store: StoreDep) -> JsonResponse:
    key = service.check_path(path)
    spooled = await store.spool(request.stream(), max_bytes=upload_limit(request))
    try:
        await run_in_threadpool(store.put_file, key, spooled.path)
    finally:
        spooled.discard()
    return JsonResponse({})


@router.get("/{path:path}", response_class=Response, responses=file_responses(200, media_types=ANY_TYPE))
async def download_artifact(path: PathLong, store: StoreDep) -> StreamingResponse:
    key = service.check_path(path)
    size, media, chunks = await run_in_threadpool(service.open_file, store, key)
    return StreamingResponse(chunks, media_type=media, headers={"content-length": str(size)})


@router.delete("/{path:path}", responses=answers(Empty))
async def delete_artifact(path: PathLong, store: StoreDep) -> JsonResponse:
    key = service.check_path(path)
    await run_in_threadpool(store.delete_prefix, key)
    await run_in_threadpool(store.delete, key)
    return JsonResponse({})


@list_router.get("/artifacts/list", responses=answers(ArtifactFiles))
def list_run_artifacts(request: Request, session: SessionDep, store: StoreDep) -> JsonResponse:
    data = query(request)
    run = runs.load_row(session, run_id(data))
    root = service.run_root(run["artifact_uri"])
    files = service.listing(store, service.join(root, data.get("path")))
    prefix = (data.get("path") or "").strip("/")
    body: dict[str, Any] = {"root_uri": run["artifact_uri"]}
    if files:
        body["files"] = [{**f, "path": f"{prefix}/{f['path']}" if prefix else f["path"]} for f in files]
    return JsonResponse(body)
