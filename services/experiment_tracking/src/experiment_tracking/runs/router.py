"""Native run API: `/api/experiments/{id}/runs/...`, plus cross-experiment search and compare."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Query, Response, status
from mlops_kit.bounds import PathStr
from mlops_kit.deps import READ_ONLY, SessionDep
from mlops_kit.errors import JsonResponse
from sqlalchemy.orm import Session

from experiment_tracking import validation
from experiment_tracking.errors import InvalidValue, RunNotFound
from experiment_tracking.paths import ExperimentIdPath, RunIdPath
from experiment_tracking.queries import Filter, MetricKey, OrderBy, PageToken, RunIds, View
from experiment_tracking.runs import compare, service
from experiment_tracking.runs.schemas import (
    CONTEXT_TAG,
    DESCRIPTION_TAG,
    SOURCE_TAGS,
    LatestMetricsRead,
    MetricHistoriesRead,
    MetricHistoryPage,
    MetricsLoggedRead,
    RunComparisonRead,
    RunCreate,
    RunPage,
    RunRead,
    RunSearch,
    RunUpdate,
    run_fields,
)
from experiment_tracking.runs.service import Batch, MetricPoint
from experiment_tracking.validation import MetricsBody, RunParams, RunTags
from experiment_tracking.values import json_number, now_ms, parse_metric_value

router = APIRouter(tags=["runs"])
RUN = "/api/experiments/{experiment_id}/runs/{run_id}"
METRICS_EXAMPLE = {"accuracy": 0.95, "precision": 0.92, "recall": 0.98, "step": 100}


def run_in_experiment(session: Session, experiment_id: str, run_id: str) -> dict[str, Any]:
    row = service.load_row(session, run_id)
    if str(row["experiment_id"]) != experiment_id:
        raise RunNotFound(
            f"no run {run_id!r} in experiment {experiment_id!r}",
            {"run_id": run_id, "experiment_id": experiment_id},
        )
    return row


def _run(experiment_id: ExperimentIdPath, run_id: RunIdPath, session: SessionDep) -> str:
    run_in_experiment(session, experiment_id, run_id)
    return run_id


RunId = Annotated[str, Depends(_run)]


def _read(session: Session, run_id: str) -> RunRead:
    return RunRead.of(service.get(session, run_id))


def _create_tags(body: RunCreate) -> dict[str, str]:
    tags = dict(body.tags)
    if body.description is not None:
        tags[DESCRIPTION_TAG] = body.description
    for field, value in (body.source.model_dump(exclude_none=True) if body.source else {}).items():
        tags[SOURCE_TAGS[field]] = value
    return tags


def _datasets(body: RunCreate) -> list[dict[str, Any]]:
    return [
        {
            "name": d.name,
            "digest": d.digest or hashlib.sha256(d.source.encode()).hexdigest()[:8],
            "source_type": d.source_type,
            "source": d.source,
            "schema": None,
            "profile": None,
            "tags": {CONTEXT_TAG: d.context} if d.context else {},
        }
        for d in body.datasets
    ]


@router.post(
    "/api/experiments/{experiment_id}/runs",
    status_code=status.HTTP_201_CREATED,
    response_model=RunRead,
)
def create_run(experiment_id: ExperimentIdPath, body: RunCreate, session: SessionDep) -> RunRead:
    run_id = service.create(
        session,
        experiment_id,
        run_name=body.run_name,
        user_id=body.user_id,
        start_time=body.start_time,
        tags=_create_tags(body),
        params={k: str(v) for k, v in body.parameters.items()},
        parent_run_id=body.parent_run_id,
        environment=body.environment,
    )
    if body.datasets:
        service.log_datasets(session, run_id, _datasets(body))
    return _read(session, run_id)


# pages of runs (up to 50,000), histories (up to 100,000 points) and metric logging answer with a
# prebuilt orjson response, no model built per run or point; `response_model` documents the shape
@router.get("/api/experiments/{experiment_id}/runs", response_model=RunPage)
def list_runs(
    experiment_id: ExperimentIdPath,
    session: SessionDep,
    filter: Filter = None,
    order_by: OrderBy = None,
    view: View = "ACTIVE_ONLY",
    limit: Annotated[int, Query(ge=1, le=50000)] = 100,
    page_token: PageToken = None,
) -> JsonResponse:
    found, token = service.search(
        session,
        [experiment_id],
        filter_string=filter,
        order_by=order_by,
        view=view,
        max_results=limit,
        page_token=page_token,
    )
    return JsonResponse({"items": [run_fields(r) for r in found], "next_page_token": token})


@router.get(RUN, response_model=RunRead)
def get_run(run_id: RunId, session: SessionDep) -> RunRead:
    return _read(session, run_id)


@router.patch(RUN, response_model=RunRead)
def update_run(run_id: RunId, body: RunUpdate, session: SessionDep) -> RunRead:
    """Status lifecycle: RUNNING → FINISHED / FAILED / KILLED (end time defaults to now)."""
    service.update(
        session, run_id, status=body.status, end_time=body.end_time, run_name=body.run_name, strict=True
    )
    if body.description is not None:
        service.log_batch(session, run_id, Batch(tags={DESCRIPTION_TAG: body.description}))
    return _read(session, run_id)


@router.delete(RUN, status_code=status.HTTP_204_NO_CONTENT)
def delete_run(run_id: RunId, session: SessionDep) -> Response:
    service.set_lifecycle(session, run_id, "deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(f"{RUN}/restore", response_model=RunRead)
def restore_run(run_id: RunId, session: SessionDep) -> RunRead:
    service.set_lifecycle(session, run_id, "active")
    return _read(session, run_id)


@router.post(f"{RUN}/params", response_model=RunRead)
def log_params(
    run_id: RunId,
    session: SessionDep,
    params: Annotated[RunParams, Body(examples=[{"max_depth": 8}])],
) -> RunRead:
    """Params are immutable: logging a different value for a logged key is a 409, nothing stored."""
    service.log_batch(session, run_id, Batch(params={k: str(v) for k, v in params.items()}))
    return _read(session, run_id)


@router.post(f"{RUN}/tags", response_model=RunRead)
def set_tags(
    run_id: RunId, session: SessionDep, tags: Annotated[RunTags, Body(examples=[{"team": "growth"}])]
) -> RunRead:
    service.log_batch(session, run_id, Batch(tags=tags))
    return _read(session, run_id)


@router.delete(f"{RUN}/tags/{{key:path}}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag(run_id: RunId, key: PathStr, session: SessionDep) -> Response:
    service.delete_tag(session, run_id, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _points(body: dict[str, Any]) -> list[MetricPoint]:
    """`{"accuracy": 0.95, "step": 100}` or `{"metrics": [{"key", "value", "step", "timestamp"}]}`;
    the batch's size and keys are checked by the service."""
    if "metrics" in body and isinstance(body["metrics"], list):
        items = body["metrics"]
        points = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidValue(f"metrics[{index}] must be an object", {"index": index})
            where = f"metrics[{index}]"
            points.append(
                MetricPoint(
                    key=cast(str, item.get("key")),  # checked by the service, as every key
                    value=parse_metric_value(item.get("value"), f"{where}.value"),
                    timestamp=validation.epoch_millis(
                        f"{where}.timestamp", item.get("timestamp") or now_ms()
                    ),
                    step=validation.integer(f"{where}.step", item.get("step") or 0),
                )
            )
        return points
    step = validation.integer("step", body.get("step") or 0)
    timestamp = validation.epoch_millis("timestamp", body.get("timestamp") or now_ms())
    values = {k: v for k, v in body.items() if k not in ("step", "timestamp")}
    if not values:
        raise InvalidValue("no metrics in the request body", {"example": METRICS_EXAMPLE})
    return [MetricPoint(k, parse_metric_value(v, k), timestamp, step) for k, v in values.items()]


@router.post(f"{RUN}/metrics", response_model=MetricsLoggedRead)
def log_metrics(
    run_id: RunId,
    session: SessionDep,
    body: Annotated[MetricsBody, Body(examples=[METRICS_EXAMPLE])],
) -> JsonResponse:
    points = _points(body)
    service.log_batch(session, run_id, Batch(metrics=points))
    return JsonResponse({"run_id": run_id, "logged": len(points)})


@router.get(f"{RUN}/metrics", response_model=LatestMetricsRead)
def latest_metrics(run_id: RunId, session: SessionDep) -> LatestMetricsRead:
    return LatestMetricsRead.of(service.get(session, run_id))


@router.get(f"{RUN}/metrics/{{key:path}}/history", response_model=MetricHistoryPage)
def metric_history(
    run_id: RunId,
    key: PathStr,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
    page_token: PageToken = None,
) -> JsonResponse:
    points, token = service.metric_history(session, run_id, key, max_results=limit, page_token=page_token)
    items = [{"value": json_number(v), "timestamp": ts, "step": s} for v, ts, s in points]
    return JsonResponse({"key": key, "items": items, "next_page_token": token})


@router.post("/api/runs/search", openapi_extra=READ_ONLY, response_model=RunPage)
def search_runs(body: RunSearch, session: SessionDep) -> JsonResponse:
    found, token = service.search(
        session,
        body.experiment_ids,
        filter_string=body.filter,
        order_by=body.order_by,
        view=body.view,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return JsonResponse({"items": [run_fields(r) for r in found], "next_page_token": token})


@router.get("/api/experiments/{experiment_id}/best-run", response_model=RunRead)
def best_run(
    experiment_id: ExperimentIdPath,
    session: SessionDep,
    metric: MetricKey,
    mode: Annotated[str, Query(max_length=3, pattern="^(max|min)$")] = "max",
    filter: Filter = None,
) -> RunRead:
    """The run with the highest (or lowest) latest value of `metric`, among runs matching `filter`."""
    return RunRead.of(compare.best_run(session, experiment_id, metric, mode, filter))


def _ids(raw: list[str]) -> list[str]:
    ids = [part for item in raw for part in item.split(",") if part]
    if not 1 <= len(ids) <= 100:
        raise InvalidValue("give between 1 and 100 run ids", {"count": len(ids)})
    return ids


@router.get("/api/runs/compare", response_model=RunComparisonRead)
def compare_runs(session: SessionDep, run_ids: RunIds) -> RunComparisonRead:
    """Params and latest metrics side by side, and which params differ."""
    return RunComparisonRead.model_validate(compare.side_by_side(session, _ids(run_ids)))


@router.get("/api/metrics/history", response_model=MetricHistoriesRead)
def metric_histories(
    session: SessionDep,
    run_ids: RunIds,
    key: MetricKey,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> JsonResponse:
    """One metric's history for several runs, for plotting them together."""
    return JsonResponse(compare.histories(session, _ids(run_ids), key, limit))
