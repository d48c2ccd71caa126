"""MLflow 3 logged-model endpoints (used by `log_model` and autologging)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from mlops_kit.bounds import PathStr
from mlops_kit.deps import READ_ONLY, SessionDep
from mlops_kit.errors import JsonResponse
from mlops_kit.openapi import answers

from experiment_tracking.logged_models import service
from experiment_tracking.mlflow_api import convert
from experiment_tracking.mlflow_api.answers import Empty, LoggedModelAnswer, LoggedModelSearch
from experiment_tracking.mlflow_api.params import JsonBody, key_values, required, string_list, text
from experiment_tracking.runs import service as runs

router = APIRouter(prefix="/logged-models", tags=["MLflow REST API"])


def _model(row: dict[str, Any]) -> JsonResponse:
    return JsonResponse({"model": convert.logged_model(row)})


@router.post("", responses=answers(LoggedModelAnswer))
def create_logged_model(payload: JsonBody, session: SessionDep) -> JsonResponse:
    source_run = payload.get("source_run_id") or None
    if source_run:
        runs.load_row(session, source_run)
    params = {k: str(v) for k, v in key_values(payload.get("params"), "params").items()}
    tags = {k: str(v) for k, v in key_values(payload.get("tags"), "tags").items()}
    row = service.create(
        session,
        required(payload, "experiment_id"),
        name=payload.get("name"),
        model_type=payload.get("model_type"),
        source_run_id=source_run,
        params=runs.check_params(params),
        tags=runs.check_tags(tags),
    )
    return _model(row)


@router.post("/search", openapi_extra=READ_ONLY, responses=answers(LoggedModelSearch))
def search_logged_models(payload: JsonBody, session: SessionDep) -> JsonResponse:
    found, token = service.search(
        session,
        string_list(payload, "experiment_ids"),
        payload.get("filter"),
        payload.get("max_results"),
        payload.get("page_token"),
    )
    body: dict[str, Any] = {"models": [convert.logged_model(r) for r in found]} if found else {}
    if token:
        body["next_page_token"] = token
    return JsonResponse(body)


@router.get("/{model_id}", responses=answers(LoggedModelAnswer))
def get_logged_model(model_id: PathStr, session: SessionDep) -> JsonResponse:
    return _model(service.get(session, model_id))


@router.patch("/{model_id}", responses=answers(LoggedModelAnswer))
def finalize_logged_model(model_id: PathStr, payload: JsonBody, session: SessionDep) -> JsonResponse:
    return _model(service.finalize(session, model_id, text(payload, "status")))


@router.delete("/{model_id}", responses=answers(Empty))
def delete_logged_model(model_id: PathStr, session: SessionDep) -> JsonResponse:
    service.delete(session, model_id)
    return JsonResponse({})


@router.patch("/{model_id}/tags", responses=answers(Empty))
def set_logged_model_tags(model_id: PathStr, payload: JsonBody, session: SessionDep) -> JsonResponse:
    tags = {k: str(v) for k, v in key_values(payload.get("tags"), "tags").items()}
    service.merge(session, model_id, "tags", runs.check_tags(tags))
    return JsonResponse({})


@router.delete("/{model_id}/tags/{tag_key}", responses=answers(Empty))
def delete_logged_model_tag(model_id: PathStr, tag_key: PathStr, session: SessionDep) -> JsonResponse:
    service.delete_tag(session, model_id, tag_key)
    return JsonResponse({})


@router.post("/{model_id}/params", responses=answers(Empty))
def log_logged_model_params(model_id: PathStr, payload: JsonBody, session: SessionDep) -> JsonResponse:
    params = {k: str(v) for k, v in key_values(payload.get("params"), "params").items()}
    service.merge(session, model_id, "params", runs.check_params(params))
    return JsonResponse({})
