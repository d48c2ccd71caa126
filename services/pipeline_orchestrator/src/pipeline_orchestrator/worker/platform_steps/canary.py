"""The ``start_canary`` step: a canary rollout of a new model version in the A/B testing service."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.platform_steps.clients import (
    ab_testing_client,
    alias_target,
    registry_client,
    str_or_none,
)

if TYPE_CHECKING:
    from mlops_client.ab_models import AbExperiment

CANARY_STAGES = [5, 10, 25, 50, 100]


def start_canary(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """A `mode: canary` experiment of the A/B testing service (baseline first, candidate second),
    started: its controller moves traffic through the stages and promotes or rolls back the alias.

    With ``enabled`` false, or a null ``new_version`` (the register step registered nothing), it starts
    nothing and says why (``started: false``): a template's canary step is then a no-op."""
    model = str(inputs["model_name"])
    if "new_version" not in inputs:  # given but null is "nothing registered"; absent is a mistake
        raise TaskFailed("start_canary: missing input(s) ['new_version']")
    if not _flag(inputs.get("enabled", True)) or str_or_none(inputs.get("new_version")) is None:
        reason = "disabled (enabled is false)" if not _flag(inputs.get("enabled", True)) else "no new version"
        return {"started": False, "model_name": model, "reason": reason}
    new = str(inputs["new_version"])
    stages = _stages(inputs)
    current = _control_version(model, inputs)
    body = _canary_body(ctx, inputs, model, current, new, stages)
    created, started = _create_and_start(body)
    canary = started.canary or created.canary or {}
    return {
        "started": True,
        "experiment_id": str(created.id),
        "key": body["key"],
        "name": body["name"],
        "status": started.status,
        "model_name": model,
        "control_version": current,
        "canary_version": new,
        "initial_weight": stages[0] / 100,
        "stages": canary.get("stages") or stages,
        "alias": body["canary"]["alias"],
    }


def _stages(inputs: dict[str, Any]) -> list[float]:
    """The traffic percentages, the first one `initial_weight` (a fraction) when given."""
    stages = [float(s) for s in inputs.get("stages") or CANARY_STAGES]
    if inputs.get("initial_weight") is not None:
        initial = float(inputs["initial_weight"])
        if not 0 < initial < 1:
            raise TaskFailed(f"start_canary: initial_weight must be between 0 and 1, not {initial}")
        stages = [initial * 100, *(s for s in stages if s > initial * 100)]
    return stages


def _flag(value: Any) -> bool:
    """A bool input, also when a template rendered it into text ("true"/"false")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _control_version(model: str, inputs: dict[str, Any]) -> str:
    current = str_or_none(inputs.get("current_version"))
    if current is not None:
        return current
    alias = str(inputs.get("control_alias") or "production")
    found = alias_target(registry_client(), model, alias)
    if found is None:
        raise TaskFailed(f"start_canary: {model} has no {alias!r} alias; give current_version")
    return str(found.version)


def _canary_body(
    ctx: TaskContext, inputs: dict[str, Any], model: str, current: str, new: str, stages: list[float]
) -> dict[str, Any]:
    """The A/B testing service's ExperimentCreate for a canary (its schema forbids other fields)."""
    key = str(inputs.get("name") or f"{model}-canary-{new}-{ctx.run_id[:8]}")
    key = re.sub(r"[^A-Za-z0-9_.:-]+", "_", key)[:100]
    metrics, guardrails = _canary_metrics(inputs)
    body: dict[str, Any] = {
        "key": key,
        "name": key,
        "model_name": model,
        "mode": "canary",
        "description": str(inputs.get("description") or "")
        or f"canary of {model} version {new} (pipeline {ctx.pipeline}, run {ctx.run_id}, task {ctx.task})",
        "variants": [
            {"name": "control", "weight": round(1 - stages[0] / 100, 6), "model_version": current},
            {"name": "canary", "weight": round(stages[0] / 100, 6), "model_version": new},
        ],
        "metrics": metrics,
        "guardrail_metrics": guardrails,
        "canary": {
            "model_name": model,
            "baseline_version": current,
            "candidate_version": new,
            "stages": stages,
            "stage_seconds": float(inputs.get("stage_duration_seconds") or 3600),
            "alias": str(inputs.get("control_alias") or "production"),
        },
    }
    if inputs.get("min_samples") is not None:
        body["canary"]["min_samples"] = int(inputs["min_samples"])
    if inputs.get("metric") is not None:
        body["primary_metric"] = _metric_name(inputs["metric"])
    return body


def _canary_metrics(inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """`metric` (the primary) and `guardrails`: metric names or the service's metric objects."""
    metrics: dict[str, dict[str, Any]] = {}
    for item in [*(inputs.get("metrics") or []), inputs.get("metric"), *(inputs.get("guardrails") or [])]:
        if item is None:
            continue
        metric = dict(item) if isinstance(item, Mapping) else {"name": str(item)}
        metrics.setdefault(str(metric.get("name")), metric)
    guardrails = [_metric_name(g) for g in inputs.get("guardrails") or []]
    return list(metrics.values()), guardrails


def _metric_name(item: Any) -> str:
    return str(item.get("name")) if isinstance(item, Mapping) else str(item)


def _create_and_start(body: dict[str, Any]) -> tuple[AbExperiment, AbExperiment]:
    """The draft experiment, then the same experiment started, through the A/B testing client."""
    import httpx
    from mlops_client import MlopsError, ServiceUnavailableError

    ab = ab_testing_client()
    path = "/api/experiments"
    try:
        created = ab.create_experiment(body)
        path = f"/api/experiments/{created.id}/start"
        return created, ab.start(created.id)
    except (ServiceUnavailableError, httpx.HTTPError) as exc:
        cause = exc.__cause__ or exc
        raise TaskFailed(
            f"start_canary: the A/B testing service at {ab.base_url} is unreachable ({cause!r}); "
            "is it running, and MLOPS_AB_TESTING_URL right?"
        ) from None
    except MlopsError as exc:
        details = f" {orjson.dumps(exc.details).decode()}" if exc.details else ""
        raise TaskFailed(f"start_canary: POST {ab.base_url}{path} answered {exc}{details}"[:1200]) from None
