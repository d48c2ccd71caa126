"""Tracking runs for hpo: the parent run (created and ended by the engine) and one run per trial
(by the worker), nested under it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline_orchestrator.worker.context import TaskContext
from pipeline_orchestrator.worker.platform_steps.clients import (
    experiment_id,
    lineage_tags,
    param_values,
    tracking_client,
)

if TYPE_CHECKING:
    from mlops_client import ActiveRun, TrackingClient


def tracking_enabled(experiment: str | None = None) -> bool:
    """Whether hpo trials are logged: an experiment is named, or a tracking service is configured."""
    return bool(experiment) or bool(os.environ.get("MLOPS_EXPERIMENT_TRACKING_URL"))


def start_parent_run(
    experiment: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Create the RUNNING run an hpo task's trials nest under; returns its id.

    `experiment` must be the name the trials get (``spec["experiment"]``, defaulting to the
    pipeline's name). Blocking HTTP: call it from a thread in async code.
    """
    client = tracking_client()
    run = client.create_run(
        experiment_id(client, experiment),
        run_name=name,
        parameters=param_values(params or {}),
        tags=dict(tags or {}),
    )
    return run.id


def end_parent_run(
    run_id: str,
    status: str = "FINISHED",
    best: Mapping[str, Any] | None = None,
    *,
    experiment: str | None = None,
) -> None:
    """End the parent run (FINISHED, FAILED or KILLED), first recording the best trial.

    `best` is the hpo summary (``best_value``, ``best_params``, ``best_trial``, ``best_run_id``,
    ``metric``, ``n_trials``, ``n_failed``) or the best trial's outputs (``value``, ``params``,
    ``metrics``, ``trial_number``, ``run_id``). Logged on the parent: metrics ``best_value`` and
    ``<metric>`` (and the best trial's metrics), params ``best.<name>``, tags ``mlops.best_trial``,
    ``mlops.best_run_id``, ``mlops.n_trials``, ``mlops.n_failed``. Without `experiment` the run's
    experiment is looked up. Blocking HTTP: call it from a thread in async code.
    """
    client = tracking_client()
    exp_id = experiment_id(client, experiment) if experiment else _experiment_of(client, run_id)
    if best:
        _log_best(client, exp_id, run_id, best)
    client.end_run(exp_id, run_id, status)


def _log_best(client: TrackingClient, exp_id: str, run_id: str, best: Mapping[str, Any]) -> None:
    def first(*keys: str) -> Any:
        return next((best[k] for k in keys if best.get(k) is not None), None)

    value, metric = first("best_value", "value"), best.get("metric")
    metrics = {str(k): float(v) for k, v in (best.get("metrics") or {}).items() if _is_number(v)}
    if _is_number(value):
        metrics["best_value"] = float(value)
        if metric:
            metrics[str(metric)] = float(value)
    if metrics:
        client.log_metrics(exp_id, run_id, metrics)
    params = first("best_params", "params")
    if isinstance(params, Mapping) and params:
        client.log_params(exp_id, run_id, param_values({f"best.{k}": v for k, v in params.items()}))
    tags = {
        "mlops.best_trial": first("best_trial", "trial_number"),
        "mlops.best_run_id": first("best_run_id", "run_id"),
        "mlops.n_trials": best.get("n_trials"),
        "mlops.n_failed": best.get("n_failed"),
    }
    if any(v is not None for v in tags.values()):
        client.set_tags(exp_id, run_id, {k: str(v) for k, v in tags.items() if v is not None})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _experiment_of(client: TrackingClient, run_id: str) -> str:
    data = client.get_json("/api/2.0/mlflow/runs/get", run_id=run_id)
    return str(data["run"]["info"]["experiment_id"])


def start_trial_run(ctx: TaskContext, spec: Mapping[str, Any], params: Mapping[str, Any]) -> ActiveRun:
    """A RUNNING tracking run for one trial, nested under ``spec["parent_run_id"]`` when given
    (the service records it as the ``mlflow.parentRunId`` tag, as MLflow does)."""
    client = tracking_client()
    exp_id = experiment_id(client, str(spec.get("experiment") or ctx.pipeline))
    tags = lineage_tags(ctx)
    if spec.get("trial_number") is not None:
        tags["mlops.trial_number"] = str(spec["trial_number"])
    return client.start_run(
        experiment_id=exp_id,
        run_name=ctx.task,
        parameters=param_values(params),
        tags=tags,
        parent_run_id=spec.get("parent_run_id") or None,
    )
