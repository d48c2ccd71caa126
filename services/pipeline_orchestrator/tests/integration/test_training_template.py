"""The training pipeline template end to end, against real services run as processes.

Model registry, experiment tracking and the orchestrator (local worker processes) each run as
``python -m <service>`` on SQLite and local files in a temporary directory; the orchestrator's
workers reach the other two through ``MLOPS_MODEL_REGISTRY_URL`` / ``MLOPS_EXPERIMENT_TRACKING_URL``.
The template trains a real scikit-learn RandomForestClassifier on breast_cancer; the search is
cut to 4 trials of 10-50 trees and the orchestrator to one worker process so the test stays under
a minute on 2 cores.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from mlops_client import RegistryClient, TrackingClient
from mlops_kit.testing import ServiceProcess, wait_until
from pipeline_orchestrator.templates import TRAINING_PIPELINE_FILE, training, training_pipeline

N_TRIALS = 4
EXPERIMENT = "training-template-test"
TASKS = ["load", "validate", "tune", "train", "evaluate", "log", "register", "canary"]
COMPUTE = TASKS[:5]  # the tasks served from the cache when nothing changed


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = Path(tmp_path_factory.mktemp("training-template"))
    base = {"MLOPS_DATA_DIR": str(tmp)}
    processes = [ServiceProcess(m, env=base, tmp=tmp) for m in ("model_registry", "experiment_tracking")]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ServiceProcess.start, processes))
        urls = {f"MLOPS_{p.module.upper()}_URL": p.url for p in processes}
        orchestrator = ServiceProcess(
            "pipeline_orchestrator",
            env={
                **base,
                **urls,
                "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "local",
                # one worker process: importing scikit-learn in a fresh process is most of a
                # cold run on a loaded 2-core machine, and the trials take well under a second
                "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "1",
                "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
            },
            tmp=tmp,
        )
        processes.append(orchestrator)
        orchestrator.start()
        yield {**urls, "orchestrator": orchestrator.url, "data_dir": str(tmp)}
    finally:
        for process in reversed(processes):  # stopping one never started is a no-op
            process.stop()


@pytest.fixture
def api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack["orchestrator"], timeout=30) as client:
        yield client


@pytest.fixture
def registry(stack: dict[str, str]) -> Iterator[RegistryClient]:
    with RegistryClient(stack["MLOPS_MODEL_REGISTRY_URL"]) as client:
        yield client


@pytest.fixture
def tracking(stack: dict[str, str]) -> Iterator[TrackingClient]:
    with TrackingClient(stack["MLOPS_EXPERIMENT_TRACKING_URL"]) as client:
        yield client


def _definition(name: str) -> dict[str, Any]:
    """The template with a smaller search, the test's own experiment and its own name."""
    definition = training_pipeline(name, n_trials=N_TRIALS, parallelism=2, experiment=EXPERIMENT)
    tune = next(t for t in definition["tasks"] if t["name"] == "tune")
    tune["search_space"]["n_estimators"] = {"type": "int", "low": 10, "high": 50, "step": 10}
    return definition


def _run(
    api: httpx.Client,
    pipeline: str,
    parameters: dict[str, Any],
    timeout: float = 240,
    expect: str = "succeeded",
) -> dict[str, Any]:
    response = api.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": parameters})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/runs/{run_id}").json()
        return run if run["state"] in ("succeeded", "failed", "cancelled") else None

    run = wait_until(finished, timeout=timeout, what=f"run {run_id}", interval=0.2, tolerate=())
    if run["state"] != expect:
        errors = {t["name"]: (t["state"], t["error"]) for t in run["tasks"] if t["error"]}
        raise AssertionError(f"run {run_id} {run['state']}: {run['error']}\n{json.dumps(errors, indent=1)}")
    return run


def _tasks(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in run["tasks"]}


def test_the_shipped_json_loads_as_is(api: httpx.Client) -> None:
    path = Path(training.__file__).with_name(TRAINING_PIPELINE_FILE)
    headers = {"content-type": "application/json"}
    response = api.post("/api/pipelines", content=path.read_bytes(), headers=headers)
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["name"] == "train-classifier"
    assert [t["name"] for t in body["definition"]["tasks"]] == TASKS
    assert training_pipeline() == json.loads(path.read_text())


def test_train_register_and_refuse_a_model_that_is_not_better(
    stack: dict[str, str],
    api: httpx.Client,
    registry: RegistryClient,
    tracking: TrackingClient,
    tmp_path: Path,
) -> None:
    pipeline = f"train-test-{secrets.token_hex(3)}"
    model = f"clf-{secrets.token_hex(3)}"
    response = api.post("/api/pipelines", json=_definition(pipeline))
    assert response.status_code == 201, response.text

    # first run: everything computed, the model registered and promoted ------------------------
    started = time.monotonic()
    first = _run(api, pipeline, {"model_name": model})
    first_seconds = time.monotonic() - started
    tasks = _tasks(first)
    assert all(tasks[name]["state"] == "succeeded" for name in TASKS), {n: tasks[n]["state"] for n in TASKS}
    load, tune = tasks["load"]["outputs"], tasks["tune"]["outputs"]
    assert load["dataset"] == "breast_cancer" and load["n_train"] + load["n_test"] == 569
    assert tasks["validate"]["outputs"]["valid"] is True
    trials = [t for t in first["tasks"] if t["parent"] == "tune"]
    assert sorted(t["name"] for t in trials) == [f"tune[{i}]" for i in range(N_TRIALS)]
    assert all(t["state"] == "succeeded" for t in trials)
    assert tune["n_trials"] == N_TRIALS and tune["n_failed"] == 0
    assert set(tune["best_params"]) == {"n_estimators", "max_depth"}
    assert 0.85 < tune["best_value"] <= 1.0

    # the trials are nested runs under the search's parent run in experiment tracking
    parent_id = tune["parent_run_id"]
    assert parent_id, "the hpo task has no parent run in experiment tracking"
    experiment = tracking.get_experiment_by_name(EXPERIMENT)
    runs = list(tracking.iter_runs(experiment.id))
    by_id = {r.id: r for r in runs}
    parent = by_id[parent_id]
    assert parent.status == "FINISHED"
    children = [r for r in runs if r.parent_run_id == parent_id]
    assert len(children) == N_TRIALS
    for child in children:
        assert child.status == "FINISHED"
        assert child.tags["mlops.pipeline_run_id"] == first["id"]
        assert child.tags["mlflow.parentRunId"] == parent_id
        assert set(child.params) == {"n_estimators", "max_depth"}
        assert 0 < child.metrics["score"] <= 1 and "accuracy" in child.metrics
    assert max(c.metrics["score"] for c in children) == pytest.approx(tune["best_value"])

    # the final model's run, with the test metrics
    logged = tasks["log"]["outputs"]
    final = tracking.get_run(logged["experiment_id"], logged["run_id"])
    assert final.parent_run_id is None and final.status == "FINISHED"
    assert final.tags["mlops.pipeline_run_id"] == first["id"] and final.tags["hpo.parent_run_id"] == parent_id
    evaluated = tasks["evaluate"]["outputs"]
    assert final.metrics["accuracy"] == pytest.approx(evaluated["metrics"]["accuracy"])
    assert final.params["n_estimators"] == str(tune["best_params"]["n_estimators"])

    # registered with lineage, and production points at it
    registered = tasks["register"]["outputs"]
    assert registered["registered"] is True and registered["version"] == "1"
    assert registered["current_version"] is None  # there was nothing to beat
    assert registered["reference_rows"] == load["n_train"]  # the training split is its reference
    version = registry.get_version(model, "1")
    assert version.framework in ("sklearn", "scikit-learn") and version.format == "pkl"
    assert version.lineage["pipeline_run_id"] == first["id"]
    assert version.lineage["run_id"] == logged["run_id"]
    assert version.lineage["experiment_id"] == logged["experiment_id"]
    assert [d["uri"] for d in version.lineage["datasets"]] == [load["train_uri"], load["test_uri"]]
    assert f"hpo_parent_run_id={parent_id}" in version.tags
    assert version.metrics["accuracy"] == pytest.approx(evaluated["metrics"]["accuracy"])
    assert registry.get_alias(model, "production").version == "1"
    # rollout promote (the default): the canary step starts nothing
    assert tasks["canary"]["outputs"] == {
        "started": False,
        "model_name": model,
        "reason": "disabled (enabled is false)",
    }
    # the registered artifact is the real model
    path = registry.download_artifact(model, "1", tmp_path)
    forest = joblib.load(path)
    x_test = np.load(io.BytesIO(_artifact_bytes(stack["data_dir"], load["test_uri"])))["X"]
    assert forest.predict(x_test).shape == (load["n_test"],)

    # second run, same data: the compute is cached, the registry refuses a model that is not better
    second = _run(api, pipeline, {"model_name": model})
    tasks = _tasks(second)
    assert [tasks[name]["state"] for name in COMPUTE] == ["cached"] * len(COMPUTE)
    refused = tasks["register"]["outputs"]
    assert refused["registered"] is False
    assert refused["current_version"] == "1" and refused["compared_alias"] == "production"
    assert refused["value"] == pytest.approx(refused["current_value"])
    assert "at least as good" in refused["reason"]

    # third run, another split and seed: recomputed, and registered only if it beats production
    third = _run(api, pipeline, {"model_name": model, "seed": 7, "promote": False})
    tasks = _tasks(third)
    assert all(tasks[name]["state"] == "succeeded" for name in COMPUTE)
    decision = tasks["register"]["outputs"]
    assert decision["current_version"] == "1" and decision["metric"] == "accuracy"
    assert decision["current_value"] == pytest.approx(evaluated["metrics"]["accuracy"])
    better = decision["value"] > decision["current_value"]
    assert decision["registered"] is better, decision
    versions = [v.version for v in registry.list_versions(model).items]
    assert sorted(versions) == (["1", "2"] if better else ["1"])
    # promote off: production stays where it was either way
    assert registry.get_alias(model, "production").version == "1"
    print(f"\nfirst run (everything computed): {first_seconds:.1f}s; third run registered={better}")


def _artifact_bytes(data_dir: str, uri: str) -> bytes:
    """An artifact of the orchestrator's local store (``mlops-artifacts://<key>``), read from disk."""
    from pipeline_orchestrator.worker import artifacts

    return (Path(data_dir) / "pipeline_orchestrator" / "artifacts" / artifacts.resolve(uri)).read_bytes()


def test_an_unknown_dataset_fails_the_run_at_load_with_a_clear_error(api: httpx.Client) -> None:
    pipeline = f"train-bad-{secrets.token_hex(3)}"
    assert api.post("/api/pipelines", json=_definition(pipeline)).status_code == 201
    run = _run(api, pipeline, {"dataset": "mnist"}, expect="failed")
    tasks = _tasks(run)
    assert tasks["load"]["state"] == "failed"
    assert "unknown dataset 'mnist'; use one of breast_cancer, iris, wine" in tasks["load"]["error"]
    assert {tasks[name]["state"] for name in TASKS[1:]} == {"upstream_failed"}
    assert run["error"] == "task(s) failed: load"


def test_validation_lists_every_failed_check(tmp_path: Path) -> None:
    class Context:
        def save_artifact(self, name: str, data: bytes) -> str:
            (tmp_path / name).write_bytes(data)
            return str(tmp_path / name)

        def artifact_path(self, uri: str) -> Path:
            return Path(uri)

    context = Context()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X[3, 1] = np.nan
    y = np.array([0] * 35 + [1] * 5)
    train = training._save_split(context, "train.npz", X, y)
    test = training._save_split(context, "test.npz", rng.normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(training.DataValidationError) as failed:
        training.validate_dataset(train, test, context=context)
    message = str(failed.value)
    assert "train: 1 NaN or infinite feature value(s)" in message
    assert "train has 3 features, test has 4" in message
    assert "too few rows for class(es) {'1': 5}" in message
    assert "test has class(es) ['2'] that train does not" in message

    good = training.load_dataset("iris", 0.25, 1, context=context)
    report = training.validate_dataset(good["train_uri"], good["test_uri"], context=context)
    assert report["valid"] and report["n_classes"] == 3
    with pytest.raises(training.TemplateInputError, match="unknown dataset 'mnist'"):
        training.load_dataset("mnist", context=context)
