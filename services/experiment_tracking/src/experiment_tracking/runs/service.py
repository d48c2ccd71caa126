"""Run rules: lifecycle, immutable params, metric histories with a latest value per key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.db import lock_key
from sqlalchemy.orm import Session

from experiment_tracking import paging, validation
from experiment_tracking.errors import InvalidState, InvalidValue, ParamImmutable, RunNotFound
from experiment_tracking.experiments import service as experiments
from experiment_tracking.runs import names
from experiment_tracking.runs import repository as repo
from experiment_tracking.search import parse_order_by, parse_run_filter, run_search_query
from experiment_tracking.values import from_stored, now_ms, to_stored

RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL = ("FINISHED", "FAILED", "KILLED")
HISTORY_PAGE = 25000


@dataclass
class MetricPoint:
    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass
class Batch:
    metrics: list[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def check_run_id(raw: Any) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 32 or not raw.isalnum():
        raise InvalidValue(f"invalid run id {raw!r}: expected up to 32 letters and digits", {"run_id": raw})
    return raw


def check_status(raw: Any) -> str:
    status = str(raw).upper()
    if status not in STATUSES:
        raise InvalidValue(f"run status must be one of {', '.join(STATUSES)}; got {raw!r}", {"status": raw})
    return status


def lock(session: Session, run_id: str, *, shared: bool = False) -> None:
    """A status or lifecycle change holds the run exclusively until the commit (two finishes:
    one wins, the native API refuses the other); logging holds it shared (never to a run being
    deleted)."""
    lock_key(session, "tracking.run", run_id, shared=shared)


def _active_run(session: Session, run_id: str, *, exclusive: bool = False) -> str:
    """The run's status, after checking it exists and is not deleted (logging needs both)."""
    lock(session, check_run_id(run_id), shared=not exclusive)
    state = repo.run_state(session, check_run_id(run_id))
    if state is None:
        raise RunNotFound(f"no run with id {run_id!r}", {"run_id": run_id})
    if state[0] != "active":
        raise InvalidState(
            f"run {run_id} is deleted; restore it before logging to it",
            {"run_id": run_id, "lifecycle_stage": state[0]},
        )
    return state[1]


def load_row(session: Session, run_id: str) -> dict[str, Any]:
    row = repo.run_row(session, check_run_id(run_id))
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r}", {"run_id": run_id})
    return row


def check_tags(tags: dict[str, Any]) -> dict[str, str]:
    return {
        validation.key("tag", k): validation.text("tag", k, v, validation.MAX_TAG_VALUE)
        for k, v in tags.items()
    }


def check_params(params: dict[str, Any]) -> dict[str, str]:
    return {
        validation.key("param", k): validation.text("param", k, v, validation.MAX_PARAM_VALUE)
        for k, v in params.items()
    }


def create(
    session: Session,
    experiment_id: Any,
    *,
    run_name: str | None = None,
    user_id: str | None = None,
    start_time: int | None = None,
    tags: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
    environment: dict[str, Any] | None = None,
) -> str:
    experiment = experiments.load_row(session, experiment_id, locked=True, shared=True)
    if experiment["lifecycle_stage"] != "active":
        raise InvalidState(
            f"experiment {experiment['name']!r} is deleted; runs cannot be created in it",
            {"experiment_id": str(experiment["id"])},
        )
    clean_tags = check_tags(tags or {})
    if parent_run_id:
        load_row(session, parent_run_id)
        clean_tags[PARENT_TAG] = parent_run_id
    name = run_name or clean_tags.get(RUN_NAME_TAG) or names.generate()
    clean_tags[RUN_NAME_TAG] = validation.text("run name", "run_name", name, validation.MAX_TAG_VALUE)
    user = user_id or clean_tags.get(USER_TAG) or ""
    run_id = uuid.uuid4().hex
    repo.insert_run(
        session,
        {
            "id": run_id,
            "experiment_id": experiment["id"],
            "name": name[:250],
            "user_id": user[:256],
            "status": "RUNNING",
            "start_time": validation.epoch_millis("start_time", start_time)
            if start_time is not None
            else now_ms(),
            "lifecycle_stage": "active",
            "artifact_uri": f"{experiment['artifact_location'].rstrip('/')}/{run_id}/artifacts",
            "environment": environment,
        },
    )
    repo.set_tags(session, run_id, clean_tags)
    if params:
        _log_params(session, run_id, check_params(params))
    return run_id


def update(
    session: Session,
    run_id: str,
    *,
    status: str | None = None,
    end_time: int | None = None,
    run_name: str | None = None,
    strict: bool = False,
) -> None:
    """`strict` (the native API) refuses to move a run out of a terminal state; MLflow allows it."""
    current = _active_run(session, run_id, exclusive=True)
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = check_status(status)
        if strict and current in TERMINAL and values["status"] != current:
            raise InvalidState(
                f"run {run_id} is {current}; a finished run cannot become {values['status']}",
                {"run_id": run_id, "status": current},
            )
        if values["status"] in TERMINAL and end_time is None:
            end_time = now_ms()
    if end_time is not None:
        values["end_time"] = validation.epoch_millis("end_time", end_time)
    if run_name:
        values["name"] = validation.text("run name", "run_name", run_name, 250)
        repo.set_tags(session, run_id, {RUN_NAME_TAG: run_name})
    if values:
        repo.update_run(session, run_id, **values)


def set_lifecycle(session: Session, run_id: str, stage: str) -> None:
    lock(session, check_run_id(run_id))
    load_row(session, run_id)
    repo.update_run(
        session, run_id, lifecycle_stage=stage, deleted_time=now_ms() if stage == "deleted" else None
    )


def _log_params(session: Session, run_id: str, params: dict[str, str]) -> None:
    keys = list(params)
    existing = repo.existing_params(session, run_id, keys)
    new = {k: v for k, v in params.items() if k not in existing}
    if new:
        repo.insert_params(session, run_id, new)
        if session.get_bind().dialect.name != "sqlite":  # a concurrent writer may have won a key
            existing = repo.existing_params(session, run_id, keys)
    changed = {k: (existing[k], v) for k, v in params.items() if k in existing and existing[k] != v}
    if changed:
        key, (old, new_value) = next(iter(changed.items()))
        raise ParamImmutable(
            f"param {key!r} of run {run_id} is already {old!r}; params cannot change (tried {new_value!r})",
            {"run_id": run_id, "key": key, "old_value": old, "new_value": new_value},
        )


def _metric_rows(
    run_id: str, metrics: list[MetricPoint]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    history: list[dict[str, Any]] = []
    latest: dict[str, dict[str, Any]] = {}
    for point in metrics:
        value, is_nan = to_stored(point.value)
        row = {
            "run_id": run_id,
            "key": point.key,
            "value": value,
            "is_nan": is_nan,
            "timestamp": point.timestamp,
            "step": point.step,
        }
        history.append(
            {
                **row,
                "model_id": point.model_id,
                "dataset_name": point.dataset_name,
                "dataset_digest": point.dataset_digest,
            }
        )
        best = latest.get(point.key)
        if best is None or (point.step, point.timestamp, value) >= (
            best["step"],
            best["timestamp"],
            best["value"],
        ):
            latest[point.key] = row
    return history, list(latest.values())


def log_batch(session: Session, run_id: str, batch: Batch) -> None:
    """All or nothing: every item is validated before anything is written."""
    validation.batch_sizes(len(batch.metrics), len(batch.params), len(batch.tags))
    for point in batch.metrics:
        validation.key("metric", point.key)
    params, tags = check_params(batch.params), check_tags(batch.tags)
    _active_run(session, run_id)
    if params:
        _log_params(session, run_id, params)
    if tags:
        repo.set_tags(session, run_id, tags)
        if RUN_NAME_TAG in tags:
            repo.update_run(session, run_id, name=tags[RUN_NAME_TAG][:250])
    if batch.metrics:
        history, latest = _metric_rows(run_id, batch.metrics)
        repo.insert_metrics(session, history)
        repo.upsert_latest(session, latest)


def delete_tag(session: Session, run_id: str, key: str) -> None:
    _active_run(session, run_id)
    if not repo.delete_tag(session, run_id, key):
        raise InvalidValue(f"run {run_id} has no tag {key!r}", {"run_id": run_id, "key": key})


def log_datasets(session: Session, run_id: str, datasets: list[dict[str, Any]]) -> None:
    _active_run(session, run_id)
    if datasets:
        repo.add_datasets(session, [{"run_id": run_id, **d} for d in datasets])


def log_outputs(session: Session, run_id: str, models: list[dict[str, Any]]) -> None:
    _active_run(session, run_id)
    if models:
        repo.add_outputs(
            session, [{"run_id": run_id, "model_id": m["model_id"], "step": m.get("step", 0)} for m in models]
        )


def read_many(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    """Full runs in the order of `ids`: info, params, tags, latest metrics, datasets, outputs."""
    if not ids:
        return []
    rows = repo.run_rows(session, ids)
    params, tags = repo.params_for(session, ids), repo.tags_for(session, ids)
    latest, datasets = repo.latest_for(session, ids), repo.datasets_for(session, ids)
    outputs = repo.outputs_for(session, ids)
    runs = []
    for run_id in ids:
        row = rows[run_id]
        runs.append(
            {
                **row,
                "experiment_id": str(row["experiment_id"]),
                "params": params[run_id],
                "tags": tags[run_id],
                "metrics": [
                    {"key": k, "value": from_stored(v, nan), "timestamp": ts, "step": step}
                    for k, v, nan, ts, step in latest[run_id]
                ],
                "datasets": datasets[run_id],
                "outputs": outputs[run_id],
            }
        )
    return runs


def get(session: Session, run_id: str) -> dict[str, Any]:
    load_row(session, run_id)
    return read_many(session, [run_id])[0]


def metric_history(
    session: Session, run_id: str, key: str, *, max_results: int | None = None, page_token: str | None = None
) -> tuple[list[tuple[float, int, int]], str | None]:
    load_row(session, run_id)
    limit = validation.max_results(max_results, HISTORY_PAGE, limit=10**6)
    offset = paging.decode(page_token)
    rows = repo.history(session, run_id, key, limit + 1, offset)
    points = [(from_stored(v, nan), ts, step) for v, nan, ts, step, _ in rows[:limit]]
    return points, paging.next_token(offset, limit, len(rows))


def search(
    session: Session,
    experiment_ids: list[Any],
    *,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    view: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    ids = [experiments.parse_id(e) for e in experiment_ids]
    limit = validation.max_results(max_results, 1000)
    offset = paging.decode(page_token)
    query = run_search_query(
        parse_run_filter(filter_string),
        parse_order_by(order_by, kind="runs"),
        experiment_ids=ids,
        view=experiments.check_view(view),
    )
    found = repo.run_ids_for(session, query, limit + 1, offset)
    return read_many(session, found[:limit]), paging.next_token(offset, limit, len(found))
