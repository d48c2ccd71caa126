"""``python`` tasks (a callable called with the task's inputs) and hpo ``trial`` s (an objective)."""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any

from pipeline_orchestrator.worker import platform_steps
from pipeline_orchestrator.worker.context import TaskContext, TaskFailed

log = logging.getLogger(__name__)
_callables: dict[str, tuple[Callable[..., Any], bool]] = {}


def load_callable(ref: str) -> tuple[Callable[..., Any], bool]:
    """The function named ``package.module:attr.path`` and whether it takes a ``context``; cached."""
    found = _callables.get(ref)
    if found is None:
        found = _callables[ref] = _import(ref)
    return found


def _import(ref: str) -> tuple[Callable[..., Any], bool]:
    module_name, _, attr_path = ref.partition(":")
    if not module_name or not attr_path:
        raise TaskFailed(f"callable {ref!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise TaskFailed(
                f"cannot import {module_name!r} for callable {ref!r}: {exc}; is it installed on the worker?"
            ) from None
        raise
    target: Any = module
    for i, attr in enumerate(attr_path.split(".")):
        try:
            target = getattr(target, attr)
        except AttributeError:
            where = ".".join([module_name, *attr_path.split(".")[:i]])
            raise TaskFailed(f"callable {ref!r}: {where!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise TaskFailed(f"callable {ref!r} is a {type(target).__name__}, not a function")
    return target, _takes_context(target)


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get("context")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _kwargs(ctx: TaskContext, wants_context: bool, inputs: dict[str, Any]) -> dict[str, Any]:
    if wants_context:
        if "context" in inputs:
            raise TaskFailed("the input 'context' clashes with the TaskContext the function asks for")
        return {**inputs, "context": ctx}
    return inputs


def as_outputs(value: Any) -> dict[str, Any]:
    """A dict is the outputs; None is no outputs; any other value is ``{"result": value}``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"result": value}


def run_python(ctx: TaskContext) -> dict[str, Any]:
    spec = ctx.payload.spec
    fn, wants_context = load_callable(spec["callable"])
    return as_outputs(fn(**_kwargs(ctx, wants_context, dict(spec.get("inputs") or {}))))


# hpo trials ------------------------------------------------------------------------------------
def run_trial(ctx: TaskContext) -> dict[str, Any]:
    """One trial: ``objective(params=..., **inputs[, context])`` returns the metric (a number) or a
    dict of metrics holding it; logged as a nested tracking run when tracking is configured.

    Outputs: ``{"value", "metrics" (the numeric ones), "params", "run_id", "trial_number",
    "outputs" (the objective's non-numeric values)}``.
    """
    spec = ctx.payload.spec
    fn, wants_context = load_callable(spec["callable"])
    params = dict(spec.get("params") or {})
    metric = str(spec.get("metric") or "score")
    kwargs = _kwargs(ctx, wants_context, {**(spec.get("inputs") or {}), "params": params})
    run = None
    if platform_steps.tracking_enabled(spec.get("experiment")):
        run = ctx.tracking_run = platform_steps.start_trial_run(ctx, spec, params)
    try:
        metrics, extra = _metrics(fn(**kwargs), metric)
        if run is not None and metrics:
            run.log_metrics(metrics)
        value = metrics[metric]
        if not math.isfinite(value):
            raise TaskFailed(f"the objective's {metric!r} is {value}, not a finite number")
    except BaseException:
        if run is not None:
            _end_quietly(run, "KILLED" if ctx.cancelled.is_set() else "FAILED")
        raise
    if run is not None:
        run.end("KILLED" if ctx.cancelled.is_set() else "FINISHED")
    return {
        "value": value,
        "metrics": metrics,
        "params": params,
        "run_id": run.id if run is not None else None,
        "trial_number": spec.get("trial_number"),
        "outputs": extra,
    }


def _number(value: Any) -> bool:
    """An int, a float, or a numpy-like scalar (float() works, not text, not a container)."""
    if isinstance(value, bool | str | bytes):
        return False
    return isinstance(value, int | float) or (hasattr(value, "__float__") and not hasattr(value, "__len__"))


def _metrics(result: Any, metric: str) -> tuple[dict[str, float], dict[str, Any]]:
    if _number(result):
        return {metric: float(result)}, {}
    if not isinstance(result, dict):
        raise TaskFailed(
            f"the objective returned a {type(result).__name__}; return a number or a dict with {metric!r}"
        )
    metrics = {str(k): float(v) for k, v in result.items() if _number(v)}
    if metric not in metrics:
        raise TaskFailed(
            f"the objective's result has no numeric {metric!r} (it has {sorted(map(str, result))})"
        )
    extra = {str(k): v for k, v in result.items() if str(k) not in metrics}
    return metrics, extra


def _end_quietly(run: Any, status: str) -> None:
    try:
        run.end(status)
    except Exception as exc:  # the trial's own failure is what matters
        log.warning("could not mark tracking run %s %s: %s", run.id, status, exc)
