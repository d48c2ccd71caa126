"""The unmodified `mlflow` client against a running service process, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException


@pytest.fixture
def tracking(tracking_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(tracking_url)
    yield tracking_url
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_fluent_run_is_logged_and_visible_through_both_apis(tracking: str, tmp_path: Path) -> None:
    experiment = mlflow.set_experiment(_name("fluent"))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "loss.csv").write_text("step,loss\n0,1.0\n")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("model", "rf")
        mlflow.log_params({"max_depth": 8, "n_estimators": 100})
        mlflow.log_metric("accuracy", 0.91, step=1)
        mlflow.log_metrics({"accuracy": 0.95, "loss": float("nan"), "gain": float("inf")}, step=2)
        mlflow.set_tag("team", "growth")
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(tmp_path / "plots"), artifact_path="plots")
    client = MlflowClient()
    fetched = client.get_run(run.info.run_id)
    assert fetched.info.status == "FINISHED" and fetched.info.run_name == "baseline"
    assert fetched.data.params == {"model": "rf", "max_depth": "8", "n_estimators": "100"}
    assert fetched.data.metrics["accuracy"] == 0.95
    assert math.isnan(fetched.data.metrics["loss"]) and fetched.data.metrics["gain"] == math.inf
    assert fetched.data.tags["team"] == "growth"
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["notes.txt", "plots"]
    local = client.download_artifacts(run.info.run_id, "plots", str(tmp_path / "dl"))
    assert (Path(local) / "loss.csv").read_text() == "step,loss\n0,1.0\n"

    native = httpx.get(f"{tracking}/api/experiments/{experiment.experiment_id}/runs/{run.info.run_id}").json()
    assert native["params"]["model"] == "rf" and native["metrics"]["accuracy"] == 0.95
    assert native["metrics"]["loss"] == "NaN" and native["status"] == "FINISHED"


def test_native_runs_are_visible_to_the_mlflow_client(tracking: str) -> None:
    created = httpx.post(f"{tracking}/api/experiments", json={"name": _name("native")}).json()
    run = httpx.post(
        f"{tracking}/api/experiments/{created['id']}/runs",
        json={"run_name": "lstm_dropout_0.3", "parameters": {"learning_rate": 0.001, "batch_size": 32}},
    ).json()
    logged = httpx.post(
        f"{tracking}/api/experiments/{created['id']}/runs/{run['id']}/metrics",
        json={"accuracy": 0.95, "precision": 0.92, "recall": 0.98, "step": 100},
    )
    assert logged.status_code == 200, logged.text
    fetched = MlflowClient().get_run(run["id"])
    assert fetched.info.run_name == "lstm_dropout_0.3"
    assert fetched.data.params == {"learning_rate": "0.001", "batch_size": "32"}
    assert fetched.data.metrics == {"accuracy": 0.95, "precision": 0.92, "recall": 0.98}
    assert MlflowClient().get_experiment_by_name(created["name"]).experiment_id == created["id"]


def test_search_runs_filters_orders_and_pages(tracking: str) -> None:
    experiment_id = mlflow.create_experiment(_name("search"))
    client = MlflowClient()
    for i in range(12):
        run = client.create_run(experiment_id, tags={"team": "a" if i % 2 else "b"})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("f1", i / 10, 0, 0)],
            params=[Param("model", "rf" if i < 6 else "gbm")],
        )
        client.set_terminated(run.info.run_id)
    found = client.search_runs(
        [experiment_id],
        "metrics.f1 > 0.2 and params.model = 'rf' and tags.team = 'a' and attributes.status = 'FINISHED'",
        order_by=["metrics.f1 DESC"],
    )
    assert [r.data.metrics["f1"] for r in found] == [0.5, 0.3]
    first = client.search_runs([experiment_id], order_by=["metrics.f1 ASC"], max_results=5)
    second = client.search_runs(
        [experiment_id], order_by=["metrics.f1 ASC"], max_results=5, page_token=first.token
    )
    assert [r.data.metrics["f1"] for r in first + second] == [i / 10 for i in range(10)]
    everything = mlflow.search_runs([experiment_id], output_format="list")
    assert len(everything) == 12


def test_metric_history_pages_through_long_histories(tracking: str) -> None:
    client = MlflowClient()
    run = client.create_run(mlflow.create_experiment(_name("history")))
    points = 30_000
    for start in range(0, points, 1000):
        batch = [Metric("loss", 1 / (s + 1), 1_700_000_000_000 + s, s) for s in range(start, start + 1000)]
        client.log_batch(run.info.run_id, metrics=batch)
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(points))
    assert client.get_run(run.info.run_id).data.metrics["loss"] == 1 / points


def test_mlflow_error_codes_are_the_ones_the_client_branches_on(tracking: str) -> None:
    client = MlflowClient()
    name = _name("errors")
    experiment_id = client.create_experiment(name)
    with pytest.raises(MlflowException) as exists:
        client.create_experiment(name)
    assert exists.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_param(run.info.run_id, "lr", "0.1")  # same value again is fine
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_filter:
        client.search_runs([experiment_id], "metrics.f1 >> 2")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "position" in bad_filter.value.message
    assert client.get_experiment("0").name == "Default"


def test_oversize_batch_is_rejected_whole_with_400(tracking: str) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment(_name("oversize")))
    metrics = [{"key": f"m{i}", "value": 1.0, "timestamp": 0, "step": 0} for i in range(1001)]
    response = httpx.post(
        f"{tracking}/api/2.0/mlflow/runs/log-batch", json={"run_id": run.info.run_id, "metrics": metrics}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run.info.run_id).data.metrics == {}


def test_sklearn_autolog_records_params_metrics_and_a_loadable_model(tracking: str) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(_name("autolog"))
    mlflow.sklearn.autolog(log_input_examples=False, silent=True)
    try:
        features, labels = load_iris(return_X_y=True)
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300).fit(features, labels)
    finally:
        mlflow.sklearn.autolog(disable=True)
    fetched = MlflowClient().get_run(run.info.run_id)
    assert fetched.data.params["max_iter"] == "300"
    assert fetched.data.metrics["training_accuracy_score"] > 0.9
    assert fetched.inputs.dataset_inputs, "autolog records the training dataset"
    model_id = fetched.outputs.model_outputs[0].model_id
    model = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert list(model.predict(features[:3])) == [0, 0, 0]
