"""The MLflow tracking REST API (experiments, runs, metrics), served under MLflow's own paths."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from mlops_kit.deps import READ_ONLY, SessionDep, run_transaction
from mlops_kit.errors import JsonResponse
from mlops_kit.openapi import answers
from sqlalchemy.orm import Session

from experiment_tracking import validation
from experiment_tracking.errors import InvalidValue
from experiment_tracking.experiments import service as experiments
from experiment_tracking.mlflow_api import convert
from experiment_tracking.mlflow_api.answers import (
    Empty,
    ExperimentAnswer,
    ExperimentCreated,
    ExperimentSearch,
    MetricHistory,
    RunAnswer,
    RunInfoAnswer,
    RunSearch,
)
from experiment_tracking.mlflow_api.params import (
    JSON_BODY,
    JsonBody,
    batch,
    json_body,
    key_values,
    metric_point,
    query,
    required,
    run_id,
    string_list,
    text,
)
from experiment_tracking.runs import service as runs
from experiment_tracking.runs.service import Batch
from experiment_tracking.values import json_number

router = APIRouter(tags=["MLflow REST API"])
EMPTY: dict[str, Any] = {}


# experiments ------------------------------------------------------------------------------------
@router.post("/experiments/create", responses=answers(ExperimentCreated))
def create_experiment(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiment_id = experiments.create(
        session,
        text(payload, "name"),
        artifact_location=payload.get("artifact_location") or None,
        tags=key_values(payload.get("tags"), "tags"),
    )
    return JsonResponse({"experiment_id": experiment_id})


@router.get("/experiments/get", responses=answers(ExperimentAnswer))
def get_experiment(request: Request, session: SessionDep) -> JsonResponse:
    found = experiments.get(session, required(query(request), "experiment_id"))
    return JsonResponse({"experiment": convert.experiment(found)})


@router.get("/experiments/get-by-name", responses=answers(ExperimentAnswer))
def get_experiment_by_name(request: Request, session: SessionDep) -> JsonResponse:
    found = experiments.get_by_name(session, required(query(request), "experiment_name"))
    return JsonResponse({"experiment": convert.experiment(found)})


def _search_experiments(data: dict[str, Any], session: SessionDep) -> JsonResponse:
    found, token = experiments.search(
        session,
        filter_string=data.get("filter"),
        order_by=string_list(data, "order_by"),
        view=data.get("view_type"),
        max_results=data.get("max_results"),
        page_token=data.get("page_token"),
    )
    body: dict[str, Any] = {"experiments": [convert.experiment(e) for e in found]}
    if token:
        body["next_page_token"] = token
    return JsonResponse(body)


@router.post("/experiments/search", openapi_extra=READ_ONLY, responses=answers(ExperimentSearch))
def search_experiments(payload: JsonBody, session: SessionDep) -> JsonResponse:
    return _search_experiments(payload, session)


@router.get("/experiments/search", responses=answers(ExperimentSearch))
def search_experiments_get(request: Request, session: SessionDep) -> JsonResponse:
    data: dict[str, Any] = query(request)
    data["order_by"] = request.query_params.getlist("order_by")
    return _search_experiments(data, session)


@router.post("/experiments/delete", responses=answers(Empty))
def delete_experiment(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiments.delete(session, required(payload, "experiment_id"))
    return JsonResponse(EMPTY)


@router.post("/experiments/restore", responses=answers(Empty))
def restore_experiment(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiments.restore(session, required(payload, "experiment_id"))
    return JsonResponse(EMPTY)


@router.post("/experiments/update", responses=answers(Empty))
def update_experiment(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiment_id = required(payload, "experiment_id")
    if payload.get("new_name"):
        experiments.rename(session, experiment_id, text(payload, "new_name"))
    else:
        experiments.load_row(session, experiment_id)
    return JsonResponse(EMPTY)


@router.post("/experiments/set-experiment-tag", responses=answers(Empty))
def set_experiment_tag(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiments.set_tags(
        session, required(payload, "experiment_id"), {text(payload, "key"): payload.get("value", "")}
    )
    return JsonResponse(EMPTY)


@router.post("/experiments/delete-experiment-tag", responses=answers(Empty))
def delete_experiment_tag(payload: JsonBody, session: SessionDep) -> JsonResponse:
    experiments.delete_tag(session, required(payload, "experiment_id"), text(payload, "key"))
    return JsonResponse(EMPTY)


# runs -------------------------------------------------------------------------------------------
@router.post("/runs/create", openapi_extra=JSON_BODY, responses=answers(RunAnswer))
async def create_run(request: Request) -> JsonResponse:
    payload = await json_body(request)
    # as in MLflow: no experiment_id (an empty body) is a 400, not a run in the default experiment
    experiment_id = str(required(payload, "experiment_id"))

    def work(session: Session) -> dict[str, Any]:
        new_id = runs.create(
            session,
            experiment_id,
            run_name=payload.get("run_name") or None,
            user_id=payload.get("user_id") or None,
            start_time=payload.get("start_time"),
            tags=key_values(payload.get("tags"), "tags"),
        )
        return convert.run(runs.get(session, new_id))

    # one worker-thread hop for the whole unit of work (populating runs is a hot path too)
    return JsonResponse({"run": await run_transaction(request, work)})


@router.post("/runs/update", openapi_extra=JSON_BODY, responses=answers(RunInfoAnswer))
async def update_run(request: Request) -> JsonResponse:
    payload = await json_body(request)
    target = run_id(payload)

    def work(session: Session) -> dict[str, Any]:
        runs.update(
            session,
            target,
            status=payload.get("status"),
            end_time=payload.get("end_time"),
            run_name=payload.get("run_name") or None,
        )
        return convert.run_info(runs.load_row(session, target))

    return JsonResponse({"run_info": await run_transaction(request, work)})


@router.post("/runs/delete", responses=answers(Empty))
def delete_run(payload: JsonBody, session: SessionDep) -> JsonResponse:
    runs.set_lifecycle(session, run_id(payload), "deleted")
    return JsonResponse(EMPTY)


@router.post("/runs/restore", responses=answers(Empty))
def restore_run(payload: JsonBody, session: SessionDep) -> JsonResponse:
    runs.set_lifecycle(session, run_id(payload), "active")
    return JsonResponse(EMPTY)


@router.get("/runs/get", responses=answers(RunAnswer))
def get_run(request: Request, session: SessionDep) -> JsonResponse:
    return JsonResponse({"run": convert.run(runs.get(session, run_id(query(request))))})


@router.post("/runs/search", openapi_extra=READ_ONLY, responses=answers(RunSearch))
def search_runs(payload: JsonBody, session: SessionDep) -> JsonResponse:
    found, token = runs.search(
        session,
        string_list(payload, "experiment_ids"),
        filter_string=payload.get("filter"),
        order_by=string_list(payload, "order_by"),
        view=payload.get("run_view_type"),
        max_results=payload.get("max_results"),
        page_token=payload.get("page_token"),
    )
    body: dict[str, Any] = {"runs": [convert.run(r) for r in found]} if found else {}
    if token:
        body["next_page_token"] = token
    return JsonResponse(body)


# the logging calls are the hot path: body parsed once with orjson, one transaction in one hop
@router.post("/runs/log-metric", openapi_extra=JSON_BODY, responses=answers(Empty))
async def log_metric(request: Request) -> JsonResponse:
    payload = await json_body(request)
    await _log(request, run_id(payload), Batch(metrics=[metric_point(payload, "metric")]))
    return JsonResponse(EMPTY)


@router.post("/runs/log-parameter", openapi_extra=JSON_BODY, responses=answers(Empty))
async def log_param(request: Request) -> JsonResponse:
    payload = await json_body(request)
    params = {text(payload, "key"): str(payload.get("value") or "")}
    await _log(request, run_id(payload), Batch(params=params))
    return JsonResponse(EMPTY)


@router.post("/runs/set-tag", openapi_extra=JSON_BODY, responses=answers(Empty))
async def set_tag(request: Request) -> JsonResponse:
    payload = await json_body(request)
    await _log(request, run_id(payload), Batch(tags={text(payload, "key"): payload.get("value", "")}))
    return JsonResponse(EMPTY)


@router.post("/runs/delete-tag", responses=answers(Empty))
def delete_tag(payload: JsonBody, session: SessionDep) -> JsonResponse:
    runs.delete_tag(session, run_id(payload), text(payload, "key"))
    return JsonResponse(EMPTY)


@router.post("/runs/log-batch", openapi_extra=JSON_BODY, responses=answers(Empty))
async def log_batch(request: Request) -> JsonResponse:
    payload = await json_body(request)
    await _log(request, run_id(payload), batch(payload))
    return JsonResponse(EMPTY)


async def _log(request: Request, target: str, items: Batch) -> None:
    await run_transaction(request, lambda session: runs.log_batch(session, target, items))


@router.post("/runs/log-inputs", responses=answers(Empty))
def log_inputs(payload: JsonBody, session: SessionDep) -> JsonResponse:
    datasets = []
    for index, item in enumerate(payload.get("datasets") or []):
        dataset = item.get("dataset") if isinstance(item, dict) else None
        if not isinstance(dataset, dict):
            raise InvalidValue(f"datasets[{index}] needs a 'dataset' object", {"index": index})
        datasets.append(
            {
                "name": text(dataset, "name", 500),
                "digest": text(dataset, "digest", 36),
                "source_type": text(dataset, "source_type", 36),
                "source": text(dataset, "source", 65_535),
                "schema": dataset.get("schema"),
                "profile": dataset.get("profile"),
                "tags": key_values(item.get("tags"), f"datasets[{index}].tags"),
            }
        )
    runs.log_datasets(session, run_id(payload), datasets)
    return JsonResponse(EMPTY)


@router.post("/runs/outputs", responses=answers(Empty))
def log_outputs(payload: JsonBody, session: SessionDep) -> JsonResponse:
    models = [
        {"model_id": text(m, "model_id", 36), "step": validation.integer("step", m.get("step") or 0)}
        for m in payload.get("models") or []
        if isinstance(m, dict) and m.get("model_id")
    ]
    runs.log_outputs(session, run_id(payload), models)
    return JsonResponse(EMPTY)


# metrics ----------------------------------------------------------------------------------------
@router.get("/metrics/get-history", responses=answers(MetricHistory))
def get_metric_history(request: Request, session: SessionDep) -> JsonResponse:
    data = query(request)
    points, token = runs.metric_history(
        session,
        run_id(data),
        text(data, "metric_key"),
        max_results=data.get("max_results"),
        page_token=data.get("page_token"),
    )
    key = data["metric_key"]
    body: dict[str, Any] = {
        "metrics": [{"key": key, "value": json_number(v), "timestamp": ts, "step": s} for v, ts, s in points]
    }
    if token:
        body["next_page_token"] = token
    return JsonResponse(body)
