"""The ``register_model`` step: a model version (with its artifact, reference profile and alias),
optionally only if it beats the version an alias points at."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_orchestrator.worker import artifacts
from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.platform_steps.clients import alias_target, registry_client, str_or_none

if TYPE_CHECKING:
    from mlops_client import RegistryClient


def register_model(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    from mlops_client import MlopsError

    registry = registry_client()
    name = str(inputs["name"])
    metrics = {str(k): v for k, v in (inputs.get("metrics") or {}).items()}
    alias = inputs.get("alias") or None
    compared: dict[str, Any] = {}
    current = None
    rule = inputs.get("only_if_better")
    if rule:
        compared, current, better = _compare(registry, name, metrics, alias, rule)
        if not better:
            return {"registered": False, "name": name, "version": None, **compared}
    source = inputs.get("artifact_uri") or inputs.get("path")
    local = ctx.artifact_path(str(source)) if source else None
    if local is not None and not local.exists():
        raise TaskFailed(f"register_model: {source} does not exist")
    lineage = {**(inputs.get("lineage") or {}), "pipeline_run_id": ctx.run_id}
    # one request: a failed upload registers nothing (no version left without its artifact)
    version = registry.register_model(
        name,
        version=str_or_none(inputs.get("version")),
        framework=str(inputs.get("framework") or "other"),
        format=inputs.get("format"),
        metrics=metrics,
        params=inputs.get("params") or {},
        tags=_model_tags(inputs.get("tags")),
        description=inputs.get("description"),
        signature=inputs.get("signature"),
        lineage=lineage,
        run_id=str_or_none(inputs.get("run_id")),
        experiment_id=str_or_none(inputs.get("experiment_id")),
        parent_version=str_or_none(inputs.get("parent_version")),
        path=local,
        artifact_path=_upload_target(inputs, source, local) if local is not None else None,
    )
    previous = None
    reference = None
    try:  # a version whose reference or alias could not be set is removed again: nothing half-done
        if inputs.get("reference_uri"):
            reference = _upload_reference(ctx, name, version.version, inputs)
        if alias:
            holder = (
                current if rule and _rule_alias(rule, alias) == alias else alias_target(registry, name, alias)
            )
            previous = holder.version if holder is not None else None
            registry.set_alias(
                name, alias, version.version, comment=f"pipeline run {ctx.run_id}, task {ctx.task}"
            )
    except BaseException:
        with contextlib.suppress(MlopsError):
            registry.delete_version(name, version.version)
        raise
    return {
        "registered": True,
        "name": name,
        "version": version.version,
        "uri": f"models:/{name}/{version.version}",
        "alias": alias,
        "previous_version": previous,
        "sha256": version.sha256,
        "size_bytes": version.size_bytes,
        "artifacts": [a.path for a in version.artifacts],
        "run_id": version.lineage.get("run_id"),
        "experiment_id": version.lineage.get("experiment_id"),
        "reference_rows": reference,
        **compared,
    }


def _upload_reference(ctx: TaskContext, name: str, version: str, inputs: dict[str, Any]) -> int:
    """The version's reference profile in the registry's monitoring, from the training split: an
    ``.npz`` artifact (``X``, as the training template stores it) with ``feature_names``, or a
    .csv / .parquet table. Returns the rows profiled."""
    from mlops_client import MonitoringClient
    from mlops_client.config import service_url

    path = ctx.artifact_path(str(inputs["reference_uri"]))
    data: Any = path
    if path.suffix.lower() == ".npz":
        import numpy as np

        names = [str(n) for n in inputs.get("feature_names") or []]
        with np.load(path, allow_pickle=False) as arrays:
            X = arrays["X"]
        if X.ndim != 2 or len(names) != X.shape[1]:
            raise TaskFailed(
                f"register_model: reference_uri has {X.shape[-1]} feature columns, "
                f"feature_names names {len(names)}"
            )
        data = [dict(zip(names, row, strict=True)) for row in X.tolist()]
    elif path.suffix.lower() not in (".csv", ".parquet", ".json", ".jsonl"):
        raise TaskFailed("register_model: reference_uri is a .npz, .csv, .parquet, .json or .jsonl file")
    key = os.environ.get("MLOPS_API_KEY") or None
    with MonitoringClient(service_url("model_registry"), api_key=key) as monitoring:
        summary = monitoring.set_reference(name, version, data)
    return int(summary.rows)


def _rule_alias(rule: Any, alias: str | None) -> str:
    """The alias `only_if_better` compares against: its own, else the step's `alias`, else production."""
    own = rule.get("alias") if isinstance(rule, dict) else None
    return str(own or alias or "production")


def _compare(
    registry: RegistryClient, name: str, metrics: dict[str, Any], alias: str | None, rule: Any
) -> tuple[dict[str, Any], Any, bool]:
    rule = {"metric": rule} if isinstance(rule, str) else dict(rule)
    metric = rule.get("metric")
    direction = rule.get("direction", "maximize")
    if not metric or direction not in ("maximize", "minimize"):
        raise TaskFailed(
            "register_model: only_if_better is {'metric': name, 'alias': 'production', "
            "'direction': 'maximize' | 'minimize'}"
        )
    value = metrics.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TaskFailed(
            f"register_model: only_if_better compares {metric!r}, which metrics has no number for"
        )
    value = float(value)
    against = _rule_alias(rule, alias)
    current = alias_target(registry, name, against)
    current_value = current.metrics.get(metric) if current is not None else None
    compared = {
        "metric": metric,
        "value": value,
        "compared_alias": against,
        "current_version": current.version if current is not None else None,
        "current_value": current_value,
    }
    if current_value is None:
        return compared, current, True
    maximize = direction == "maximize"
    at_least_as_good = current_value >= value if maximize else current_value <= value
    if at_least_as_good:
        compared["reason"] = (
            f"{name}@{against} (version {current.version}) has {metric}={current_value:g}, "
            f"at least as good as {value:g} ({direction})"
        )
    return compared, current, not at_least_as_good


def _model_tags(tags: Any) -> list[str]:
    if isinstance(tags, dict):
        return [f"{k}={v}" if v not in (None, "") else str(k) for k, v in tags.items()]
    return [str(t) for t in tags or []]


def _upload_target(inputs: dict[str, Any], source: Any, local: Path) -> str | None:
    """The artifact's path in the version: `artifact_path`, else a file's own name (a directory's
    files keep their paths relative to it)."""
    given = str_or_none(inputs.get("artifact_path"))
    if given or local.is_dir():
        return given
    return _artifact_name(source, local)


def _artifact_name(source: Any, local: Path) -> str:
    if artifacts.is_uri(source):
        return Path(artifacts.resolve(str(source))).name
    return local.name
