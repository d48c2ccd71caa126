"""The ``log_to_tracking`` step: one finished tracking run with params, metrics, tags and artifacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.platform_steps.clients import (
    experiment_id,
    lineage_tags,
    param_values,
    tracking_client,
)


def log_to_tracking(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    from mlops_client.tracking_models import Metric

    client = tracking_client()
    name = str(inputs.get("experiment") or ctx.pipeline)
    exp_id = experiment_id(client, name)
    points = _metric_points(inputs.get("metrics") or {}, Metric)
    tags = {**{str(k): str(v) for k, v in (inputs.get("tags") or {}).items()}, **lineage_tags(ctx)}
    run = client.start_run(
        experiment_id=exp_id,
        run_name=inputs.get("run_name") or None,
        parameters=param_values(inputs.get("params") or {}),
        tags=tags,
        description=inputs.get("description"),
        parent_run_id=inputs.get("parent_run_id") or None,
    )
    with run:
        if points:
            client.log_metric_points(exp_id, run.id, points)
        for target, source in (inputs.get("artifacts") or {}).items():
            run.log_artifact(ctx.artifact_path(source), artifact_path=str(target))
        run.end(str(inputs.get("status") or "FINISHED"))
    return {"run_id": run.id, "experiment_id": exp_id, "experiment": name, "run_name": run.info.name}


def _metric_points(metrics: Mapping[str, Any], metric_cls: Any) -> list[Any]:
    """A number is logged at step 0; a list of numbers is a history, one step each."""
    points = []
    for key, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        for step, number in enumerate(values):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise TaskFailed(f"log_to_tracking: metric {key!r} must be a number or a list of numbers")
            points.append(metric_cls(key=str(key), value=float(number), step=step))
    return points
