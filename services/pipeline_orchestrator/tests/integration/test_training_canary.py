"""The training template's release paths against real processes: model registry, experiment
tracking, the A/B testing service and the orchestrator (local worker processes).

``rollout: canary`` registers the candidate without moving ``production`` and starts a canary
rollout of it against ``production`` in the A/B testing service; nothing registered, no canary.
``data_uri`` trains on a CSV table instead of a bundled dataset."""

from __future__ import annotations

import csv
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlops_client import RegistryClient
from mlops_kit.testing import ServiceProcess, wait_until
from pipeline_orchestrator.templates import training_pipeline
from sklearn.datasets import load_breast_cancer

N_TRIALS = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = Path(tmp_path_factory.mktemp("training-canary"))
    base = {"MLOPS_DATA_DIR": str(tmp)}
    processes = [ServiceProcess(m, env=base, tmp=tmp) for m in ("model_registry", "experiment_tracking")]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(ServiceProcess.start, processes))
        urls = {f"MLOPS_{p.module.upper()}_URL": p.url for p in processes}
        ab = ServiceProcess("ab_testing", env={**base, **urls}, tmp=tmp)
        processes.append(ab)
        ab.start()
        urls["MLOPS_AB_TESTING_URL"] = ab.url
        orchestrator = ServiceProcess(
            "pipeline_orchestrator",
            env={
                **base,
                **urls,
                "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "local",
                "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "1",
                "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
            },
            tmp=tmp,
        )
        processes.append(orchestrator)
        orchestrator.start()
        yield {**urls, "orchestrator": orchestrator.url}
    finally:
        for process in reversed(processes):
            process.stop()


def _table(path: Path) -> Path:
    """breast_cancer as a CSV table with a `diagnosis` label column."""
    bunch = load_breast_cancer()
    names = [f"f{i}" for i in range(bunch.data.shape[1])]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, "diagnosis"])
        for x, y in zip(bunch.data.tolist(), bunch.target.tolist(), strict=True):
            writer.writerow([*x, y])
    return path


def _finished(api: httpx.Client, run_id: str) -> dict[str, Any] | None:
    run: dict[str, Any] = api.get(f"/api/runs/{run_id}").json()
    return run if run["state"] in ("succeeded", "failed", "cancelled") else None


def _run(api: httpx.Client, pipeline: str, parameters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = api.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": parameters})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    run = wait_until(
        lambda: _finished(api, run_id), timeout=240, what=f"run {run_id}", interval=0.2, tolerate=()
    )
    errors = {t["name"]: t["error"] for t in run["tasks"] if t["error"]}
    assert run["state"] == "succeeded", json.dumps(errors, indent=1)
    return {t["name"]: t for t in run["tasks"] if t["parent"] is None}


def test_rollout_canary_starts_a_canary_of_the_new_version_against_production(
    stack: dict[str, str], tmp_path: Path
) -> None:
    pipeline, model = f"train-canary-{secrets.token_hex(3)}", f"clf-{secrets.token_hex(3)}"
    data = str(_table(tmp_path / "patients.csv"))
    definition = training_pipeline(pipeline, n_trials=N_TRIALS, parallelism=1, experiment="canary-test")
    with httpx.Client(base_url=stack["orchestrator"], timeout=30) as api:
        assert api.post("/api/pipelines", json=definition).status_code == 201
        common = {"model_name": model, "data_uri": data, "label_column": "diagnosis"}

        # promote (the default), trained on the CSV table: production -> 1, no canary
        first = _run(api, pipeline, common)
        load = first["load"]["outputs"]
        assert load["n_train"] + load["n_test"] == 569 and load["feature_names"][:2] == ["f0", "f1"]
        assert load["dataset"] == "patients.csv"
        assert first["canary"]["outputs"]["started"] is False

        # canary, every candidate registered: version 2 registered, production stays on 1,
        # a running canary of 2 against 1 with the run's stages
        canary = {
            **common,
            "seed": 7,
            "rollout": "canary",
            "only_if_better": False,
            "canary_stages": [25, 100],
            "canary_stage_seconds": 5,
            "canary_min_samples": 30,
        }
        second = _run(api, pipeline, canary)
        registered = second["register"]["outputs"]
        assert registered["registered"] is True and registered["version"] == "2"
        assert registered["alias"] is None
        assert registered["reference_rows"] == second["load"]["outputs"]["n_train"]
        reference = httpx.get(
            f"{stack['MLOPS_MODEL_REGISTRY_URL']}/api/models/{model}/versions/2/monitoring/reference",
            timeout=10,
        )
        assert reference.status_code == 200, reference.text
        assert "f0" in reference.text and "diagnosis" not in reference.text
        started = second["canary"]["outputs"]
        assert started["started"] is True
        assert (started["control_version"], started["canary_version"]) == ("1", "2")
        with RegistryClient(stack["MLOPS_MODEL_REGISTRY_URL"]) as registry:
            assert registry.get_alias(model, "production").version == "1"
        experiment = httpx.get(
            f"{stack['MLOPS_AB_TESTING_URL']}/api/experiments/{started['experiment_id']}", timeout=10
        ).json()
        assert experiment["mode"] == "canary" and experiment["status"] == "running"
        assert [(v["model_version"], v["weight"]) for v in experiment["variants"]] == [
            ("1", 0.75),
            ("2", 0.25),
        ]
        assert experiment["canary"]["stages"] == [25, 100] and experiment["canary"]["stage_seconds"] == 5
        assert experiment["canary"]["min_samples"] == 30 and experiment["guardrail_metrics"] == ["correct"]
        stopped = httpx.post(
            f"{stack['MLOPS_AB_TESTING_URL']}/api/experiments/{started['experiment_id']}/stop", timeout=10
        )
        assert stopped.status_code == 200, stopped.text

        # canary, only if better: the same data as run 1 is not better, nothing registered, no canary
        third = _run(api, pipeline, {**common, "rollout": "canary"})
        assert third["register"]["outputs"]["registered"] is False
        assert third["canary"]["outputs"] == {
            "started": False,
            "model_name": model,
            "reason": "no new version",
        }


def test_an_unreadable_data_uri_fails_the_run_at_load(stack: dict[str, str], tmp_path: Path) -> None:
    pipeline = f"train-bad-data-{secrets.token_hex(3)}"
    bad = tmp_path / "table.csv"
    bad.write_text("a,label\nnot-a-number,1\n")
    with httpx.Client(base_url=stack["orchestrator"], timeout=30) as api:
        definition = training_pipeline(pipeline, n_trials=N_TRIALS, parallelism=1, experiment="canary-test")
        assert api.post("/api/pipelines", json=definition).status_code == 201
        response = api.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": {"data_uri": str(bad)}})
        run_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while (run := api.get(f"/api/runs/{run_id}").json())["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    load = next(t for t in run["tasks"] if t["name"] == "load")
    assert run["state"] == "failed" and "must be numeric" in load["error"], load["error"]


class _Files:
    """What the template's callables use of the worker's context, on a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save_artifact(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return str(self.root / name)

    def artifact_path(self, uri_or_path: str) -> Path:
        return Path(uri_or_path)


def test_a_parquet_table_loads_and_a_missing_label_column_or_unknown_rollout_is_a_clear_error(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pipeline_orchestrator.templates import training

    bunch = load_breast_cancer()
    columns = {f"f{i}": bunch.data[:, i] for i in range(3)}
    pq.write_table(pa.table({**columns, "y": bunch.target}), tmp_path / "t.parquet")
    files = _Files(tmp_path)
    loaded = training.load_dataset(data_uri=str(tmp_path / "t.parquet"), label_column="y", context=files)
    assert loaded["feature_names"] == ["f0", "f1", "f2"] and loaded["n_train"] + loaded["n_test"] == 569
    with pytest.raises(training.TemplateInputError, match="no label column 'label'"):
        training.load_dataset(data_uri=str(tmp_path / "t.parquet"), context=files)
    (tmp_path / "t.parquet.pkl").write_bytes(b"\x80\x04N.")  # a pickle is not read, let alone loaded
    with pytest.raises(training.TemplateInputError, match=r"a \.csv or \.parquet file"):
        training.load_dataset(data_uri=str(tmp_path / "t.parquet.pkl"), context=files)
    model = training.train_model(loaded["train_uri"], {"n_estimators": 10}, context=files)
    with pytest.raises(training.TemplateInputError, match="unknown rollout 'sideways'"):
        training.evaluate_model(model["model_uri"], loaded["test_uri"], rollout="sideways", context=files)
    plan = training.evaluate_model(
        model["model_uri"], loaded["test_uri"], rollout="canary", only_if_better=False, context=files
    )
    assert (plan["promote_alias"], plan["canary"], plan["register_rule"]) == (None, True, None)
