"""Built-in ``platform`` steps: the closed loop's arrows, each a real call through ``mlops_client``.

Service URLs and the API key come from the environment as the client reads them
(``MLOPS_MODEL_REGISTRY_URL``, ``MLOPS_EXPERIMENT_TRACKING_URL``, ``MLOPS_FEATURE_STORE_URL``,
``MLOPS_AB_TESTING_URL``, ``MLOPS_API_KEY``; the payload's ``env`` is applied on top).

Steps and their outputs:

- ``log_to_tracking`` → ``{"run_id", "experiment_id", "experiment", "run_name"}``
- ``register_model`` → ``{"registered": true, "name", "version", "uri", ...}`` or, when
  ``only_if_better`` finds the current version at least as good, ``{"registered": false, "reason",
  "current_version", "current_value", ...}``
- ``fetch_training_data`` → ``{"dataset_uri", "rows", "columns", "format", "feature_sets"}``
- ``start_canary`` → ``{"experiment_id", "name", "status", "control_version", "canary_version", ...}``

Also here, for the engine's hpo controller: :func:`tracking_enabled`, :func:`start_parent_run`
and :func:`end_parent_run` (trials are nested under the parent run they are given).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pipeline_orchestrator.worker import artifacts
from pipeline_orchestrator.worker.context import TaskContext, TaskFailed

if TYPE_CHECKING:
    from mlops_client import ActiveRun, FeatureStoreClient, RegistryClient, TrackingClient

AB_TESTING_DEFAULT_URL = "http://127.0.0.1:8090"
CANARY_STAGES = [5, 10, 25, 50, 100]

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}
_experiment_ids: dict[tuple[str, str], str] = {}


# clients ---------------------------------------------------------------------------------------
def _client(service: str) -> Any:
    """One client per service, URL and key, per process (making one costs milliseconds)."""
    from mlops_client import FeatureStoreClient, RegistryClient, TrackingClient
    from mlops_client.config import service_url

    url, key = service_url(service), os.environ.get("MLOPS_API_KEY") or None
    cache_key = (service, url, key)
    client = _clients.get(cache_key)
    if client is None:
        cls = {
            "model_registry": RegistryClient,
            "experiment_tracking": TrackingClient,
            "feature_store": FeatureStoreClient,
        }[service]
        with _lock:
            client = _clients.get(cache_key) or cls(url, api_key=key)
            _clients[cache_key] = client
    return client


def tracking_client() -> TrackingClient:
    client: TrackingClient = _client("experiment_tracking")
    return client


def registry_client() -> RegistryClient:
    client: RegistryClient = _client("model_registry")
    return client


def feature_store_client() -> FeatureStoreClient:
    client: FeatureStoreClient = _client("feature_store")
    return client


def experiment_id(client: TrackingClient, name: str) -> str:
    """The id of the experiment called `name`, created if missing (cached per process)."""
    key = (client.base_url, name)
    found = _experiment_ids.get(key)
    if found is None:
        experiment = client.get_or_create_experiment(name)
        if experiment.lifecycle_stage != "active":
            raise TaskFailed(f"tracking experiment {name!r} is deleted; restore it or use another name")
        found = _experiment_ids[key] = experiment.id
    return found


def lineage_tags(ctx: TaskContext) -> dict[str, str]:
    """Tracking run tags tying a run to the pipeline run, task and attempt that made it."""
    return {
        "mlops.pipeline": ctx.pipeline,
        "mlops.pipeline_run_id": ctx.run_id,
        "mlops.task": ctx.task,
        "mlops.task_attempt": str(ctx.attempt),
    }


def _param_values(params: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(k): v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
        for k, v in params.items()
    }


# the step dispatcher ---------------------------------------------------------------------------
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


# log_to_tracking -------------------------------------------------------------------------------
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
        parameters=_param_values(inputs.get("params") or {}),
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


# register_model --------------------------------------------------------------------------------
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
        version=_str_or_none(inputs.get("version")),
        framework=str(inputs.get("framework") or "other"),
        format=inputs.get("format"),
        metrics=metrics,
        params=inputs.get("params") or {},
        tags=_model_tags(inputs.get("tags")),
        description=inputs.get("description"),
        signature=inputs.get("signature"),
        lineage=lineage,
        run_id=_str_or_none(inputs.get("run_id")),
        experiment_id=_str_or_none(inputs.get("experiment_id")),
        parent_version=_str_or_none(inputs.get("parent_version")),
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
                current
                if rule and _rule_alias(rule, alias) == alias
                else _alias_target(registry, name, alias)
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
    current = _alias_target(registry, name, against)
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


def _alias_target(registry: RegistryClient, name: str, alias: str) -> Any:
    """The version `alias` points at, or None (no such model or alias)."""
    from mlops_client import NotFoundError

    try:
        return registry.get_alias(name, alias)
    except NotFoundError:
        return None


def _model_tags(tags: Any) -> list[str]:
    if isinstance(tags, dict):
        return [f"{k}={v}" if v not in (None, "") else str(k) for k, v in tags.items()]
    return [str(t) for t in tags or []]


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _upload_target(inputs: dict[str, Any], source: Any, local: Path) -> str | None:
    """The artifact's path in the version: `artifact_path`, else a file's own name (a directory's
    files keep their paths relative to it)."""
    given = _str_or_none(inputs.get("artifact_path"))
    if given or local.is_dir():
        return given
    return _artifact_name(source, local)


def _artifact_name(source: Any, local: Path) -> str:
    if artifacts.is_uri(source):
        return Path(artifacts.resolve(str(source))).name
    return local.name


# fetch_training_data ---------------------------------------------------------------------------
def fetch_training_data(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    if (inputs.get("entities") is None) == (inputs.get("entity_uri") is None):
        raise TaskFailed("fetch_training_data: give either entities (rows) or entity_uri")
    if (inputs.get("features") is None) == (inputs.get("feature_service") is None):
        raise TaskFailed("fetch_training_data: give either features or feature_service")
    features = inputs.get("features")
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    service = inputs.get("feature_service")
    fmt = str(inputs.get("format") or "parquet")
    if fmt not in ("parquet", "json"):
        raise TaskFailed(f"fetch_training_data: format is 'parquet' or 'json', not {fmt!r}")
    entities = _entities(ctx, inputs)
    name = str(inputs.get("name") or "training_data")
    client = feature_store_client()
    if fmt == "parquet":
        target = ctx.workdir / f"{name}.parquet"
        client.historical(entities, features=features, feature_service=service, out_path=target)
        rows, columns = _parquet_shape(target)
        uri = artifacts.put(ctx.store, ctx.prefix + target.name, target, consume=True)
    else:
        result = client.historical(entities, features=features, feature_service=service)
        rows, columns = len(result.rows), result.columns
        uri = artifacts.put_bytes(ctx.store, ctx.prefix + f"{name}.json", orjson.dumps(result.records()))
    refs = features or []
    return {
        "dataset_uri": uri,
        "rows": rows,
        "columns": columns,
        "format": fmt,
        "features": refs,
        "feature_service": service,
        "feature_sets": sorted({str(r).split(":", 1)[0] for r in refs if ":" in str(r)}),
    }


def _entities(ctx: TaskContext, inputs: dict[str, Any]) -> Any:
    rows = inputs.get("entities")
    if rows is not None:
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TaskFailed("fetch_training_data: entities must be a list of rows (objects)")
        return rows
    path = ctx.artifact_path(str(inputs["entity_uri"]))
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        return path
    if suffix == ".jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if suffix == ".json":
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict) and "columns" in data and "rows" in data:
            return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]
        if isinstance(data, dict) and "rows" in data:
            data = data["rows"]
        if isinstance(data, list):
            return data
    raise TaskFailed(
        f"fetch_training_data: {inputs['entity_uri']} is not entity rows "
        "(a .parquet, .csv, .jsonl or .json list of rows)"
    )


def _parquet_shape(path: Path) -> tuple[int | None, list[str] | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the dataset is stored either way; its shape is a convenience
        return None, None
    metadata = pq.read_metadata(path)
    return metadata.num_rows, list(metadata.schema.to_arrow_schema().names)


# start_canary ----------------------------------------------------------------------------------
def start_canary(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """A `mode: canary` experiment of the A/B testing service (baseline first, candidate second),
    started: its controller moves traffic through the stages and promotes or rolls back the alias.

    With ``enabled`` false, or a null ``new_version`` (the register step registered nothing), it starts
    nothing and says why (``started: false``): a template's canary step is then a no-op."""
    model = str(inputs["model_name"])
    if "new_version" not in inputs:  # given but null is "nothing registered"; absent is a mistake
        raise TaskFailed("start_canary: missing input(s) ['new_version']")
    if not _flag(inputs.get("enabled", True)) or _str_or_none(inputs.get("new_version")) is None:
        reason = "disabled (enabled is false)" if not _flag(inputs.get("enabled", True)) else "no new version"
        return {"started": False, "model_name": model, "reason": reason}
    new = str(inputs["new_version"])
    stages = [float(s) for s in inputs.get("stages") or CANARY_STAGES]
    if inputs.get("initial_weight") is not None:
        initial = float(inputs["initial_weight"])
        if not 0 < initial < 1:
            raise TaskFailed(f"start_canary: initial_weight must be between 0 and 1, not {initial}")
        stages = [initial * 100, *(s for s in stages if s > initial * 100)]
    current = _control_version(model, inputs)
    body = _canary_body(ctx, inputs, model, current, new, stages)
    created = _ab_testing("POST", "/api/experiments", body)
    exp_id = created.get("id") or created.get("key")
    if exp_id is None:
        raise TaskFailed(f"start_canary: the A/B testing service answered no experiment id: {created}")
    started = _ab_testing("POST", f"/api/experiments/{exp_id}/start", None)
    canary = started.get("canary") or created.get("canary") or {}
    return {
        "started": True,
        "experiment_id": str(exp_id),
        "key": body["key"],
        "name": body["name"],
        "status": started.get("status") or created.get("status"),
        "model_name": model,
        "control_version": current,
        "canary_version": new,
        "initial_weight": stages[0] / 100,
        "stages": canary.get("stages") or stages,
        "alias": body["canary"]["alias"],
    }


def _flag(value: Any) -> bool:
    """A bool input, also when a template rendered it into text ("true"/"false")."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _control_version(model: str, inputs: dict[str, Any]) -> str:
    current = _str_or_none(inputs.get("current_version"))
    if current is not None:
        return current
    alias = str(inputs.get("control_alias") or "production")
    found = _alias_target(registry_client(), model, alias)
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


def _ab_testing(method: str, path: str, body: Any) -> dict[str, Any]:
    import httpx

    base = os.environ.get("MLOPS_AB_TESTING_URL", AB_TESTING_DEFAULT_URL).rstrip("/")
    key = os.environ.get("MLOPS_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(method, base + path, json=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise TaskFailed(
            f"start_canary: the A/B testing service at {base} is unreachable ({exc!r}); "
            "is it running, and MLOPS_AB_TESTING_URL right?"
        ) from None
    if response.status_code >= 400:
        raise TaskFailed(
            f"start_canary: {method} {base}{path} answered {response.status_code}: {response.text[:1000]}"
        )
    try:
        data = response.json()
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


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


# hpo: parent runs (the engine) and trial runs (the worker) -------------------------------------
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
        parameters=_param_values(params or {}),
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
        client.log_params(exp_id, run_id, _param_values({f"best.{k}": v for k, v in params.items()}))
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
        parameters=_param_values(params),
        tags=tags,
        parent_run_id=spec.get("parent_run_id") or None,
    )
