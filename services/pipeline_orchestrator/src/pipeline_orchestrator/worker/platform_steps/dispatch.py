"""The ``platform`` task kind: a step by name, its inputs checked against what it takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_orchestrator.worker import artifacts
from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.platform_steps.canary import start_canary
from pipeline_orchestrator.worker.platform_steps.registration import register_model
from pipeline_orchestrator.worker.platform_steps.tracking import log_to_tracking
from pipeline_orchestrator.worker.platform_steps.training_data import fetch_training_data


def run_step(ctx: TaskContext) -> dict[str, Any]:
    from mlops_client import MlopsError

    step = ctx.payload.spec.get("step")
    found = STEPS.get(str(step))
    if found is None:
        raise TaskFailed(f"unknown platform step {step!r}; one of {', '.join(STEPS)}")
    fn, required, allowed = found
    inputs = dict(ctx.payload.spec.get("inputs") or {})
    unknown = sorted(set(inputs) - allowed - required)
    if unknown:
        raise TaskFailed(f"{step}: unknown input(s) {unknown}; it takes {sorted(allowed | required)}")
    missing = sorted(k for k in required if inputs.get(k) in (None, ""))
    if missing:
        raise TaskFailed(f"{step}: missing input(s) {missing}")
    try:
        return fn(ctx, inputs)
    except MlopsError as exc:
        raise TaskFailed(f"{step}: {exc}") from exc
    except artifacts.ArtifactError as exc:
        raise TaskFailed(f"{step}: {exc}") from None


def _names(text: str) -> set[str]:
    return set(text.split())


STEPS: dict[str, tuple[Callable[[TaskContext, dict[str, Any]], dict[str, Any]], set[str], set[str]]] = {
    # step: (function, required inputs, optional inputs)
    "log_to_tracking": (
        log_to_tracking,
        set(),
        _names("experiment run_name params metrics tags parent_run_id description artifacts status"),
    ),
    "register_model": (
        register_model,
        {"name"},
        _names(
            "artifact_uri path artifact_path framework format metrics params tags description signature "
            "lineage run_id experiment_id parent_version version alias only_if_better reference_uri "
            "feature_names"
        ),
    ),
    "fetch_training_data": (
        fetch_training_data,
        set(),
        _names("entities entity_uri features feature_service format name"),
    ),
    "start_canary": (
        start_canary,
        {"model_name"},
        _names(
            "new_version current_version control_alias name initial_weight stages "
            "stage_duration_seconds metric metrics guardrails min_samples description enabled"
        ),
    ),
}
