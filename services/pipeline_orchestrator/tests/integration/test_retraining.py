"""Retraining policies against a real model registry process: drift and performance computed by
its monitoring from logged predictions and labels, AlertManager alerts, the gate and its records."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlops_client import MonitoringClient, RegistryClient
from mlops_kit.testing.backends import wait_until
from mlops_kit.testing.process import ServiceProcess
from orchestrator_helpers import define, wait_run
from pipeline_orchestrator.app import create_app
from pipeline_orchestrator.retraining.tables import RetrainingPolicy
from pipeline_orchestrator.settings import OrchestratorSettings
from sqlalchemy import update

FEATURES = ("x1", "x2")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("retraining-registry")
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=tmp) as process:
        yield process.url


def _app(tmp: Path, registry: str, poll_seconds: float) -> TestClient:
    settings = OrchestratorSettings(
        data_dir=tmp,
        log_level="WARNING",
        workers=2,
        scheduler_interval_seconds=0.2,
        lease_seconds=5,
        model_registry_url=registry,
        retraining_poll_seconds=poll_seconds,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Iterator[TestClient]:
    """The orchestrator in-process; its monitor loop idle (evaluations are asked for on demand)."""
    with _app(tmp_path_factory.mktemp("retraining-orchestrator"), registry, 3600) as client:
        yield client


@pytest.fixture
def model(registry: str) -> str:
    """A registered model (version 1) with a reference profile of x1, x2 ~ N(0, 1)."""
    name = f"churn-{secrets.token_hex(4)}"
    rng = np.random.default_rng(11)
    with RegistryClient(registry) as client:
        client.register_model(name)
    rows = [
        {"x1": float(a), "x2": float(b), "prediction": int(a > 0), "label": int(a > 0)}
        for a, b in rng.normal(size=(1000, 2))
    ]
    with MonitoringClient(registry) as monitoring:
        monitoring.set_reference(name, "1", rows)
    return name


def _label(registry: str, model: str, values: np.ndarray, shift: float, accuracy: float) -> None:
    right = round(len(values) * accuracy)
    rows, labels = [], {}
    for i, (a, b) in enumerate(values):
        rid = f"{model}-{secrets.token_hex(6)}-{i}"
        prediction = int(a > 0)
        rows.append(
            {
                "request_id": rid,
                "features": {"x1": float(a) + shift, "x2": float(b)},
                "prediction": prediction,
            }
        )
        labels[rid] = prediction if i < right else 1 - prediction
    with MonitoringClient(registry) as monitoring:
        monitoring.log_predictions_sync(model, rows, version="1")
        monitoring.log_labels(model, labels)


def retraining_pipeline(api: TestClient, name: str, hold: float = 0.0) -> str:
    """A pipeline shaped like the training template's end: a `register` task whose outputs name
    the version it registered (here echoed from the parameters)."""
    define(
        api,
        name,
        [
            {"name": "train", "kind": "shell", "command": f"sleep {hold}", "cache": False},
            {
                "name": "register",
                "kind": "python",
                "callable": "orchestrator_task_fixtures:echo",
                "depends_on": ["train"],
                "cache": False,
                "inputs": {
                    "registered": True,
                    "name": "{{ params.model_name }}",
                    "version": "{{ params.next_version }}",
                },
            },
        ],
        parameters=[
            {"name": "model_name", "type": "string", "required": True},
            {"name": "next_version", "type": "string", "default": "2"},
        ],
    )
    return name


def put_policy(api: TestClient, model: str, **body: Any) -> dict[str, Any]:
    body = {"cooldown_seconds": 3600, "evaluation_interval_seconds": 3600, **body}
    answer = api.put(f"/api/retraining-policies/{model}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def evaluate(api: TestClient, model: str) -> dict[str, Any]:
    answer = api.post(f"/api/retraining-policies/{model}/evaluate")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def triggers(api: TestClient, model: str) -> list[dict[str, Any]]:
    answer = api.get(f"/api/retraining-policies/{model}/triggers")
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


def retraining_runs(api: TestClient, pipeline: str) -> list[dict[str, Any]]:
    return api.get("/api/runs", params={"pipeline": pipeline, "trigger": "retraining"}).json()["items"]  # type: ignore[no-any-return]


# drift ----------------------------------------------------------------------------------------
def test_drift_over_the_threshold_starts_one_run_and_the_next_evaluation_cools_down(
    api: TestClient, registry: str, model: str
) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(api, model, pipeline=pipeline, drift={"threshold": 0.3, "features": ["x1", "x2"]})
    _label(registry, model, np.random.default_rng(1).normal(size=(300, 2)), shift=3.0, accuracy=1.0)

    first = evaluate(api, model)
    [signal] = first["signals"]
    assert signal["kind"] == "drift" and signal["fired"] is True
    assert signal["drifted_features"] == ["x1"] and signal["value"] == 0.5
    [decision] = first["triggers"]
    assert decision["decision"] == "started" and decision["run_id"]
    run = wait_run(api, decision["run_id"])
    assert run["state"] == "succeeded" and run["parameters"]["model_name"] == model

    second = evaluate(api, model)
    assert second["signals"][0]["fired"] is True
    assert [(t["decision"], t["run_id"]) for t in second["triggers"]] == [("cooldown", None)]
    assert len(retraining_runs(api, pipeline)) == 1


def test_a_trigger_record_carries_its_evidence_the_run_and_what_it_registered(
    api: TestClient, registry: str, model: str
) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(
        api,
        model,
        pipeline=pipeline,
        parameters={"next_version": "7"},
        drift={"threshold": 0.3, "window_minutes": 30},
    )
    _label(registry, model, np.random.default_rng(2).normal(size=(300, 2)), shift=3.0, accuracy=1.0)
    run_id = evaluate(api, model)["triggers"][0]["run_id"]
    wait_run(api, run_id)

    [record] = triggers(api, model)
    assert (record["kind"], record["source"], record["decision"], record["run_id"]) == (
        "drift",
        "monitor",
        "started",
        run_id,
    )
    evidence = record["evidence"]
    assert evidence["metric"] == "drift_share" and evidence["threshold"] == 0.3
    # no features named: every compared column (x1, x2 and the prediction); only x1 drifted
    assert evidence["window"] == "30m" and evidence["value"] == pytest.approx(1 / 3)
    assert evidence["rows"] == 300 and evidence["drifted_features"] == ["x1"]
    assert evidence["statistics"]["x1"] > evidence["statistics"]["x2"]
    assert record["run_state"] == "succeeded" and record["produced_version"] == "7"
    assert record["produced"]["name"] == model
    listed = api.get("/api/retraining-triggers", params={"model": model}).json()["items"]
    assert [r["id"] for r in listed] == [record["id"]]


def test_drift_below_the_threshold_starts_nothing(api: TestClient, registry: str, model: str) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    # the largest KS statistic of the watched features: robust to a chance per-feature flag
    drift = {"threshold": 0.3, "features": ["x1", "x2"], "measure": "statistic"}
    put_policy(api, model, pipeline=pipeline, drift=drift)
    _label(registry, model, np.random.default_rng(3).normal(size=(300, 2)), shift=0.0, accuracy=1.0)
    evaluation = evaluate(api, model)
    [signal] = evaluation["signals"]
    assert signal["fired"] is False and signal["metric"] == "drift_statistic" and signal["value"] < 0.3
    assert evaluation["triggers"] == []
    assert triggers(api, model) == [] and retraining_runs(api, pipeline) == []


# performance and new data ---------------------------------------------------------------------
def test_accuracy_below_the_threshold_starts_a_run(api: TestClient, registry: str, model: str) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(api, model, pipeline=pipeline, performance={"metric": "accuracy", "threshold": 0.8})
    _label(registry, model, np.random.default_rng(4).normal(size=(200, 2)), shift=0.0, accuracy=0.6)

    evaluation = evaluate(api, model)
    [signal] = evaluation["signals"]
    assert signal["kind"] == "performance" and signal["fired"] is True
    assert signal["metric"] == "accuracy" and signal["value"] == pytest.approx(0.6)
    assert signal["labelled"] == 200 and signal["threshold"] == 0.8
    [decision] = evaluation["triggers"]
    assert decision["decision"] == "started" and decision["kind"] == "performance"
    assert decision["evidence"]["value"] == pytest.approx(0.6)


def test_new_labelled_data_past_the_volume_starts_a_run(api: TestClient, registry: str, model: str) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(api, model, pipeline=pipeline, new_data={"labelled_rows": 250})
    _label(registry, model, np.random.default_rng(5).normal(size=(200, 2)), shift=0.0, accuracy=1.0)
    below = evaluate(api, model)
    assert below["signals"][0]["value"] == 200 and below["triggers"] == []

    _label(registry, model, np.random.default_rng(6).normal(size=(100, 2)), shift=0.0, accuracy=1.0)
    above = evaluate(api, model)
    assert above["signals"][0]["value"] == 300 and above["signals"][0]["threshold"] == 250
    assert [(t["kind"], t["decision"]) for t in above["triggers"]] == [("new_data", "started")]


def test_a_due_schedule_starts_a_run_and_moves_to_its_next_fire(api: TestClient, model: str) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(api, model, pipeline=pipeline, schedule={"cron": "0 2 * * 0", "timezone": "Europe/Paris"})
    due = datetime.now(UTC) - timedelta(minutes=1)
    with api.app.state.db.session(write=True) as session:  # type: ignore[attr-defined]
        session.execute(
            update(RetrainingPolicy).where(RetrainingPolicy.model == model).values(next_scheduled_at=due)
        )
        session.commit()
    evaluation = evaluate(api, model)
    assert evaluation["signals"] == []
    [decision] = evaluation["triggers"]
    assert (decision["kind"], decision["decision"]) == ("schedule", "started")
    assert decision["evidence"]["cron"] == "0 2 * * 0"
    assert datetime.fromisoformat(decision["evidence"]["fire_time"]) == due
    following = datetime.fromisoformat(
        api.get(f"/api/retraining-policies/{model}").json()["next_scheduled_at"]
    )
    assert following > datetime.now(UTC) and following.astimezone(ZoneInfo("Europe/Paris")).hour == 2
    assert evaluate(api, model)["triggers"] == []


def test_a_model_without_monitoring_data_records_the_signal_as_unavailable(api: TestClient) -> None:
    model = f"unknown-{secrets.token_hex(4)}"
    put_policy(api, model, drift={"threshold": 0.1})
    [signal] = evaluate(api, model)["signals"]
    assert signal["fired"] is False and signal["status"] == "unavailable" and "404" in signal["error"]


# alerts ---------------------------------------------------------------------------------------
def _alert(model: str, status: str) -> dict[str, Any]:
    return {
        "version": "4",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "ModelDrift", "model": model, "severity": "warning"},
                "annotations": {"summary": "drift"},
                "fingerprint": f"fp-{model}",
            }
        ],
    }


def test_a_flapping_alert_starts_one_run(api: TestClient, model: str) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{model}")
    put_policy(api, model, pipeline=pipeline)
    answers = [
        api.post("/api/triggers/alertmanager", json=_alert(model, status)).json()
        for status in ("firing", "resolved", "firing", "resolved", "firing")
    ]
    assert len(answers[0]["started"]) == 1 and answers[0]["started"][0]["model"] == model
    assert all(a["started"] == [] for a in answers[1:])
    assert len(retraining_runs(api, pipeline)) == 1
    records = triggers(api, model)
    assert [r["kind"] for r in records] == ["alert"] * 3
    assert sorted(r["decision"] for r in records)[-1] == "started"
    assert {r["decision"] for r in records} <= {"started", "already_running", "cooldown"}
    started = next(r for r in records if r["decision"] == "started")
    assert started["source"] == "alertmanager" and started["evidence"]["alertname"] == "ModelDrift"
    assert started["run_id"] == answers[0]["started"][0]["run_id"]


def test_an_alert_for_a_model_without_a_policy_goes_to_the_alert_routes(api: TestClient) -> None:
    answer = api.post(
        "/api/triggers/alertmanager", json=_alert(f"other-{secrets.token_hex(3)}", "firing")
    ).json()
    assert answer["started"] == [] and "no alert route" in answer["skipped"][0]["reason"]


# policies -------------------------------------------------------------------------------------
def test_the_orchestration_documents_setup_body_becomes_a_policy(api: TestClient) -> None:
    model = f"setup-{secrets.token_hex(4)}"
    body = {
        "performance_threshold": 0.8,
        "performance_metric": "accuracy",
        "evaluation_window": 60,
        "data_drift_threshold": 0.15,
        "drift_monitoring_features": ["customer_age", "transaction_amount"],
        "retraining_schedule": "0 2 * * 0",
        "new_data_threshold": 10000,
    }
    answer = api.post(f"/api/v1/retraining/setup/{model}", json=body)
    assert answer.status_code == 200, answer.text
    policy = api.get(f"/api/retraining-policies/{model}").json()
    assert policy["pipeline"] == "train-classifier" and policy["cooldown_seconds"] == 3600
    assert policy["performance"] == {
        "metric": "accuracy",
        "threshold": 0.8,
        "window_minutes": 60,
        "min_samples": 30,
        "higher_is_better": True,
    }
    assert policy["drift"]["features"] == ["customer_age", "transaction_amount"]
    assert policy["drift"]["threshold"] == 0.15 and policy["new_data"] == {"labelled_rows": 10000}
    assert policy["schedule"] == {"cron": "0 2 * * 0", "timezone": "UTC"}
    assert policy["next_scheduled_at"].startswith(("20", "21")) and policy["alerts"] is True
    listed = api.get("/api/retraining-policies", params={"limit": 1000}).json()["items"]
    assert model in [p["model"] for p in listed]
    assert api.delete(f"/api/retraining-policies/{model}").status_code == 204
    missing = api.get(f"/api/retraining-policies/{model}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "RETRAINING_POLICY_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"retraining_schedule": "every sunday"}, "INVALID_CRON"),
        ({"unknown_field": 1}, "VALIDATION_ERROR"),
        ({"data_drift_threshold": -1}, "VALIDATION_ERROR"),
        ({"new_data_threshold": 10**9}, "VALIDATION_ERROR"),
        ({"drift_monitoring_features": ["x" * 300]}, "VALIDATION_ERROR"),
    ],
)
def test_bad_setup_bodies_are_a_422(api: TestClient, body: dict[str, Any], code: str) -> None:
    answer = api.post("/api/v1/retraining/setup/m1", json=body)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == code


def test_policy_parameters_the_pipeline_does_not_declare_are_a_422(api: TestClient) -> None:
    pipeline = retraining_pipeline(api, f"retrain-{secrets.token_hex(4)}")
    answer = api.put("/api/retraining-policies/m2", json={"pipeline": pipeline, "parameters": {"nope": 1}})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "INVALID_RETRAINING_POLICY"


def test_a_bad_model_name_is_a_422(api: TestClient) -> None:
    assert api.put("/api/retraining-policies/-bad", json={}).status_code == 422
    assert api.post("/api/retraining-policies/nobody/evaluate").status_code == 404


# the background loop --------------------------------------------------------------------------
def test_the_monitor_loop_evaluates_due_policies_on_its_own(
    tmp_path: Path, registry: str, model: str
) -> None:
    _label(registry, model, np.random.default_rng(7).normal(size=(300, 2)), shift=3.0, accuracy=1.0)
    with _app(tmp_path, registry, 0.2) as api:
        pipeline = retraining_pipeline(api, f"retrain-{model}")
        put_policy(api, model, pipeline=pipeline, drift={"threshold": 0.3}, evaluation_interval_seconds=1)
        records = wait_until(lambda: triggers(api, model), timeout=30, what="a trigger decision")
        assert records[-1]["decision"] == "started" and records[-1]["source"] == "monitor"
        wait_until(lambda: len(triggers(api, model)) >= 2, timeout=30, what="a second evaluation")
        assert len(retraining_runs(api, pipeline)) == 1
