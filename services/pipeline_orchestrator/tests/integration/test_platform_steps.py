"""Platform steps and logged hpo trials against real registry, tracking and feature store processes."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from mlops_client import FeatureStoreClient, RegistryClient, TrackingClient
from mlops_kit.testing import S3Server, ServiceProcess, free_port
from pipeline_orchestrator.protocol import TaskPayload, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker import artifacts, platform_steps
from pipeline_orchestrator.worker.runner import execute

FIXTURES = "orchestrator_task_fixtures"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Real registry, tracking and feature store processes on SQLite; their URLs as MLOPS_* variables."""
    tmp = Path(tmp_path_factory.mktemp("platform-steps"))
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_FEATURE_STORE_ONLINE_STORE": "sqlite"}
    processes = [
        ServiceProcess(module, env=env, tmp=tmp)
        for module in ("model_registry", "experiment_tracking", "feature_store")
    ]
    with ThreadPoolExecutor(len(processes)) as pool:  # they start side by side
        started = [pool.submit(p.start) for p in processes]
    try:
        for future in started:
            future.result()
        yield {f"MLOPS_{p.module.upper()}_URL": p.url for p in processes}
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def settings(tmp_path: Path) -> OrchestratorSettings:
    return OrchestratorSettings(data_dir=tmp_path / "data")


@pytest.fixture
def unique() -> str:
    return f"m{secrets.token_hex(4)}"


@pytest.fixture
def registry(services: dict[str, str]) -> Iterator[RegistryClient]:
    with RegistryClient(services["MLOPS_MODEL_REGISTRY_URL"]) as client:
        yield client


@pytest.fixture
def tracking(services: dict[str, str]) -> Iterator[TrackingClient]:
    with TrackingClient(services["MLOPS_EXPERIMENT_TRACKING_URL"]) as client:
        yield client


@pytest.fixture
def features(services: dict[str, str]) -> Iterator[FeatureStoreClient]:
    with FeatureStoreClient(services["MLOPS_FEATURE_STORE_URL"]) as client:
        yield client


class Runner:
    def __init__(self, settings: OrchestratorSettings, env: dict[str, str]):
        self.settings, self.env = settings, env
        self.run_id = f"run-{secrets.token_hex(4)}"
        self.log = io.StringIO()

    def __call__(self, kind: str, spec: dict[str, Any], *, task: str = "step") -> TaskResult:
        payload = TaskPayload(
            attempt_id=secrets.token_hex(4),
            run_id=self.run_id,
            pipeline="closed-loop",
            task=task,
            attempt=1,
            kind=kind,
            spec=spec,
            env=self.env,  # the service URLs reach the steps through the payload's env
        )
        self.log = io.StringIO()
        return execute(payload, log=self.log, settings=self.settings)

    def step(self, step: str, task: str = "step", **inputs: Any) -> TaskResult:
        return self("platform", {"step": step, "inputs": inputs}, task=task)


@pytest.fixture
def run(settings: OrchestratorSettings, services: dict[str, str]) -> Runner:
    return Runner(settings, services)


# log_to_tracking ------------------------------------------------------------------------------
def test_log_to_tracking_records_a_run_with_lineage(
    run: Runner, tracking: TrackingClient, unique: str
) -> None:
    result = run.step(
        "log_to_tracking",
        task="log",
        experiment=unique,
        run_name="baseline",
        params={"depth": 6, "layers": [64, 32]},
        metrics={"accuracy": 0.91, "loss": [0.9, 0.5, 0.2]},
        tags={"team": "growth"},
    )
    assert result.ok, result.error
    out = result.outputs
    assert out["experiment"] == unique and out["run_name"] == "baseline"
    logged = tracking.get_run(out["experiment_id"], out["run_id"])
    assert logged.status == "FINISHED"
    assert logged.params == {"depth": "6", "layers": "[64,32]"}
    assert logged.metrics == {"accuracy": 0.91, "loss": 0.2}
    assert [p.value for p in tracking.metric_history(out["experiment_id"], out["run_id"], "loss")] == [
        0.9,
        0.5,
        0.2,
    ]
    assert logged.tags["team"] == "growth"
    assert logged.tags["mlops.pipeline_run_id"] == run.run_id and logged.tags["mlops.task"] == "log"


def test_log_to_tracking_uploads_artifacts_and_nests_under_a_parent(
    run: Runner, tracking: TrackingClient, unique: str
) -> None:
    produced = run(
        "python", {"callable": f"{FIXTURES}:writes_artifact", "inputs": {"text": "w"}}, task="train"
    )
    parent = run.step("log_to_tracking", experiment=unique, run_name="parent")
    child = run.step(
        "log_to_tracking",
        experiment=unique,
        parent_run_id=parent.outputs["run_id"],
        artifacts={"model/model.txt": produced.outputs["artifacts"]["sub/metrics.json"]},
    )
    assert child.ok, child.error
    logged = tracking.get_run(child.outputs["experiment_id"], child.outputs["run_id"])
    assert logged.parent_run_id == parent.outputs["run_id"]
    files = tracking.list_artifacts(logged.experiment_id, logged.id, recursive=True)
    assert [f.path for f in files] == ["model/model.txt"]


# register_model -------------------------------------------------------------------------------
def _model_artifact(run: Runner) -> str:
    produced = run(
        "python", {"callable": f"{FIXTURES}:writes_artifact", "inputs": {"text": "weights"}}, task="train"
    )
    assert produced.ok, produced.error
    return artifacts.uri(f"runs/{run.run_id}/train/1/model.txt")


def test_register_model_uploads_the_artifact_with_lineage_and_sets_the_alias(
    run: Runner, registry: RegistryClient, unique: str
) -> None:
    logged = run.step("log_to_tracking", experiment=unique, metrics={"accuracy": 0.9})
    result = run.step(
        "register_model",
        name=unique,
        artifact_uri=_model_artifact(run),
        framework="sklearn",
        format="pkl",
        metrics={"accuracy": 0.9},
        params={"depth": 6},
        tags={"team": "growth"},
        description="from the pipeline",
        run_id=logged.outputs["run_id"],
        experiment_id=logged.outputs["experiment_id"],
        alias="champion",
    )
    assert result.ok, result.error
    out = result.outputs
    assert (out["registered"], out["name"], out["version"], out["alias"]) == (True, unique, "1", "champion")
    assert out["artifacts"] == ["model.txt"] and out["previous_version"] is None
    lineage = registry.lineage(unique, "1").lineage
    assert lineage["pipeline_run_id"] == run.run_id
    assert (lineage["run_id"], lineage["experiment_id"]) == (
        logged.outputs["run_id"],
        logged.outputs["experiment_id"],
    )
    assert registry.get_alias(unique, "champion").version == "1"
    version = registry.get_version(unique, "1")
    assert version.tags == ["team=growth"] and version.framework == "scikit-learn"
    assert registry.download_artifact(unique, "1", run.settings.data_dir).read_bytes() == b"weights"


def test_register_model_only_if_better_compares_with_the_alias(
    run: Runner, registry: RegistryClient, unique: str
) -> None:
    rule = {"metric": "accuracy", "alias": "production", "direction": "maximize"}
    uri = _model_artifact(run)
    first = run.step(
        "register_model",
        name=unique,
        artifact_uri=uri,
        metrics={"accuracy": 0.8},
        alias="production",
        only_if_better=rule,
    )
    assert first.outputs["registered"] is True and first.outputs["current_version"] is None

    worse = run.step(
        "register_model",
        name=unique,
        artifact_uri=uri,
        metrics={"accuracy": 0.8},
        alias="production",
        only_if_better=rule,
    )
    assert worse.ok, worse.error
    assert worse.outputs["registered"] is False
    assert (worse.outputs["current_version"], worse.outputs["current_value"]) == ("1", 0.8)
    assert "at least as good" in worse.outputs["reason"]
    assert registry.get_model(unique).version_count == 1

    better = run.step(
        "register_model",
        name=unique,
        artifact_uri=uri,
        metrics={"accuracy": 0.85},
        alias="production",
        only_if_better=rule,
    )
    assert better.outputs["registered"] is True
    assert (better.outputs["version"], better.outputs["previous_version"]) == ("2", "1")
    assert registry.get_alias(unique, "production").version == "2"

    lower_is_better = {"metric": "accuracy", "alias": "production", "direction": "minimize"}
    skipped = run.step(
        "register_model", name=unique, metrics={"accuracy": 0.9}, only_if_better=lower_is_better
    )
    assert skipped.outputs["registered"] is False


def test_a_failed_artifact_upload_leaves_no_version(
    run: Runner, registry: RegistryClient, unique: str
) -> None:
    result = run.step("register_model", name=unique, artifact_uri="mlops-artifacts://runs/none/missing.pkl")
    assert not result.ok and "does not exist" in (result.error or "")
    assert registry.list_models(name_prefix=unique).total == 0


@pytest.fixture(scope="module")
def small_upload_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry that refuses uploads over 1,000 bytes: an upload that fails during registration."""
    tmp = Path(tmp_path_factory.mktemp("platform-steps-small-uploads"))
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_MAX_UPLOAD_BYTES": "1000"}
    with ServiceProcess("model_registry", env=env, tmp=tmp) as service:
        yield service.url


def test_an_upload_refused_during_registration_leaves_no_version(
    settings: OrchestratorSettings, small_upload_registry: str, unique: str
) -> None:
    run = Runner(settings, {"MLOPS_MODEL_REGISTRY_URL": small_upload_registry})
    weights = {"callable": f"{FIXTURES}:writes_artifact", "inputs": {"text": "w" * 5000}}
    assert run("python", weights, task="train").ok
    uri = artifacts.uri(f"runs/{run.run_id}/train/1/model.txt")
    result = run.step("register_model", name=unique, artifact_uri=uri, framework="sklearn")
    assert not result.ok and "413" in (result.error or ""), result.error
    with RegistryClient(small_upload_registry) as registry:
        assert registry.list_models(name_prefix=unique).total == 0  # no model, no version


def test_an_unreachable_registry_is_a_clear_failure(settings: OrchestratorSettings, unique: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = Runner(settings, {"MLOPS_MODEL_REGISTRY_URL": url}).step("register_model", name=unique)
    assert not result.ok and result.exit_status == 1
    assert (result.error or "").startswith("register_model: 0 SERVICE_UNREACHABLE") and url in (
        result.error or ""
    )


# fetch_training_data --------------------------------------------------------------------------
def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _feature_set(features: FeatureStoreClient, name: str) -> None:
    features.create_entity(f"{name}-user", join_keys=["user_id"])
    features.create_feature_set(name, {"age": "int", "score": "float"}, entity=f"{name}-user")
    features.ingest(
        name,
        [
            {"user_id": "u1", "event_timestamp": NOW - timedelta(days=2), "age": 30, "score": 1.0},
            {"user_id": "u1", "event_timestamp": NOW - timedelta(days=1), "age": 31, "score": 2.0},
        ],
    )


def test_fetch_training_data_stores_point_in_time_rows_as_parquet(
    run: Runner, features: FeatureStoreClient, unique: str, settings: OrchestratorSettings
) -> None:
    _feature_set(features, unique)
    entities = [
        {"user_id": "u1", "event_timestamp": _iso(NOW - timedelta(hours=36)), "label": 1},
        {"user_id": "u1", "event_timestamp": _iso(NOW), "label": 0},
        {"user_id": "nobody", "event_timestamp": _iso(NOW), "label": 0},
    ]
    result = run.step("fetch_training_data", entities=entities, features=[f"{unique}:age", f"{unique}:score"])
    assert result.ok, result.error
    out = result.outputs
    assert (out["rows"], out["columns"]) == (3, ["user_id", "event_timestamp", "label", "age", "score"])
    assert out["dataset_uri"] == f"mlops-artifacts://runs/{run.run_id}/step/1/training_data.parquet"
    assert out["feature_sets"] == [unique]
    path = artifacts.local_file(artifacts.get_store(settings), artifacts.resolve(out["dataset_uri"]))
    assert path is not None
    assert pq.read_table(path).column("age").to_pylist() == [30, 31, None]


def test_fetch_training_data_reads_entities_from_an_upstream_artifact(
    run: Runner, features: FeatureStoreClient, unique: str, tmp_path: Path
) -> None:
    _feature_set(features, unique)
    rows = tmp_path / "entities.json"
    rows.write_text(json.dumps([{"user_id": "u1", "event_timestamp": _iso(NOW)}]))
    saved = run("python", {"callable": f"{FIXTURES}:echo", "inputs": {}}, task="entities")
    assert saved.ok
    store = artifacts.get_store(run.settings)
    uri = artifacts.put(store, f"runs/{run.run_id}/entities/1/entities.json", rows)
    result = run.step("fetch_training_data", entity_uri=uri, features=f"{unique}:score", format="json")
    assert result.ok, result.error
    assert (result.outputs["rows"], result.outputs["format"]) == (1, "json")
    dataset = b"".join(store.open(artifacts.resolve(result.outputs["dataset_uri"])))
    assert json.loads(dataset)[0]["score"] == 2.0


# hpo trials -----------------------------------------------------------------------------------
def test_a_trial_is_logged_as_a_run_nested_under_the_parent(
    run: Runner,
    tracking: TrackingClient,
    unique: str,
    services: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, url in services.items():
        monkeypatch.setenv(key, url)  # the engine's side reads the environment
    parent_id = platform_steps.start_parent_run(unique, "tune", {"n_trials": 2, "space": {"x": [0, 1]}})
    spec = {
        "callable": f"{FIXTURES}:objective_dict",
        "params": {"x": 0.25},
        "inputs": {},
        "metric": "accuracy",
        "direction": "maximize",
        "experiment": unique,
        "parent_run_id": parent_id,
        "trial_number": 0,
    }
    result = run("trial", spec, task="tune[0]")
    assert result.ok, result.error
    out = result.outputs
    assert out["value"] == 0.75 and out["run_id"]
    experiment_id = tracking.get_experiment_by_name(unique).id
    trial = tracking.get_run(experiment_id, out["run_id"])
    assert (trial.status, trial.parent_run_id, trial.name) == ("FINISHED", parent_id, "tune[0]")
    assert trial.tags["mlflow.parentRunId"] == parent_id and trial.tags["mlops.trial_number"] == "0"
    assert trial.params == {"x": "0.25"}
    assert trial.metrics == {"accuracy": 0.75, "loss": 0.3}
    assert len(tracking.metric_history(experiment_id, trial.id, "loss")) == 4  # 3 steps + the final value

    failed = run(
        "trial", {**spec, "callable": f"{FIXTURES}:objective_nan", "trial_number": 1}, task="tune[1]"
    )
    assert not failed.ok
    children = tracking.list_runs(experiment_id, filter=f"tags.mlflow.parentRunId = '{parent_id}'").items
    assert sorted(r.status for r in children) == ["FAILED", "FINISHED"]

    platform_steps.end_parent_run(parent_id, "FINISHED", out, experiment=unique)
    parent = tracking.get_run(experiment_id, parent_id)
    assert parent.status == "FINISHED" and parent.metrics["best_value"] == 0.75
    assert parent.params["best.x"] == "0.25" and parent.tags["mlops.best_run_id"] == out["run_id"]


def test_end_parent_run_finds_the_experiment_itself(
    tracking: TrackingClient, unique: str, services: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, url in services.items():
        monkeypatch.setenv(key, url)
    assert platform_steps.tracking_enabled(None)
    parent_id = platform_steps.start_parent_run(unique, "tune")
    platform_steps.end_parent_run(parent_id, "FAILED")
    experiment_id = tracking.get_experiment_by_name(unique).id
    assert tracking.get_run(experiment_id, parent_id).status == "FAILED"


def test_end_parent_run_records_the_engines_hpo_summary(
    tracking: TrackingClient, unique: str, services: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, url in services.items():
        monkeypatch.setenv(key, url)
    parent_id = platform_steps.start_parent_run(unique, "tune")
    summary = {
        "best_params": {"lr": 0.1},
        "best_value": 0.93,
        "best_trial": 3,
        "best_run_id": "r3",
        "metric": "accuracy",
        "n_trials": 8,
        "n_failed": 1,
    }
    platform_steps.end_parent_run(parent_id, "FINISHED", summary)
    parent = tracking.get_run(tracking.get_experiment_by_name(unique).id, parent_id)
    assert parent.status == "FINISHED" and parent.metrics == {"best_value": 0.93, "accuracy": 0.93}
    assert parent.params["best.lr"] == "0.1"
    assert (parent.tags["mlops.best_trial"], parent.tags["mlops.n_trials"]) == ("3", "8")


# start_canary ---------------------------------------------------------------------------------
def test_start_canary_names_the_unreachable_ab_testing_url(settings: OrchestratorSettings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    runner = Runner(settings, {"MLOPS_AB_TESTING_URL": url})
    result = runner.step("start_canary", model_name="churn", new_version="2", current_version="1")
    assert not result.ok and result.exit_status == 1
    assert (result.error or "").startswith(f"start_canary: the A/B testing service at {url} is unreachable")


# artifacts on S3 ------------------------------------------------------------------------------
def test_artifacts_round_trip_through_the_s3_store(tmp_path: Path, s3_server: S3Server) -> None:
    settings = OrchestratorSettings(
        data_dir=tmp_path,
        artifact_store="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket=f"orchestrator-{secrets.token_hex(3)}",
    )
    runner = Runner(settings, {})
    written = runner(
        "python", {"callable": f"{FIXTURES}:writes_artifact", "inputs": {"text": "on s3"}}, task="a"
    )
    assert written.ok, written.error
    uri = f"mlops-artifacts://runs/{runner.run_id}/a/1/model.txt"
    read = runner("python", {"callable": f"{FIXTURES}:reads_artifact", "inputs": {"uri": uri}}, task="b")
    assert read.outputs == {"text": "on s3", "path_exists": True}
    assert artifacts.local_file(artifacts.get_store(settings), "x") is None
