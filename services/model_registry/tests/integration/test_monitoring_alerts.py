"""Monitoring configuration, alert rules and their evaluation (issue 13), on SQLite and PostgreSQL:
the orchestration document's MonitoringConfig shape, a 422 listing every problem, the stored drift
configuration used by the drift route, the alert state machine with its evidence, the background
evaluator and its lease across two app instances, and the Prometheus metrics every replica reports."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing import empty_tables, fresh_postgres_database, wait_until
from model_registry.app import create_app
from model_registry.monitoring.evaluator import Evaluator, Run
from model_registry.monitoring.profile import build_profile
from model_registry.monitoring.report import DriftConfig, FeatureConfig, drift
from model_registry.settings import RegistrySettings
from model_registry.tables import Base
from prometheus_client.parser import text_string_to_metric_families
from registry_helpers import register
from sqlalchemy import text

BASE = "/api/models/churn"
T0 = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('alerts')}/registry.db"
        return
    with fresh_postgres_database("alerts") as url:
        yield url


def _settings(url: str, tmp: Path, **extra: Any) -> RegistrySettings:
    values: dict[str, Any] = {
        "data_dir": tmp,
        "database_url": url,
        "log_level": "WARNING",
        "monitoring_evaluator": False,  # tests drive evaluations themselves unless they say so
        "monitoring_metrics_cache_seconds": 0,
    }
    return RegistrySettings(**(values | extra))


@pytest.fixture(scope="module")
def _app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = _settings(database_url, tmp_path_factory.mktemp("app"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(_app: TestClient) -> TestClient:
    empty_tables(_app.app.state.db, Base.metadata)
    return _app


def _evaluator(client: TestClient) -> Evaluator:
    return client.app.state.monitoring_evaluator


def _reference(n: int = 2000, seed: int = 1) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    return {
        "f1": [float(v) for v in rng.normal(0.0, 1.0, n)],
        "f2": [str(v) for v in rng.choice(["a", "b", "c"], n)],
        "prediction": [int(v) for v in rng.integers(0, 2, n)],
    }


def _records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _setup(client: TestClient, versions: tuple[str, ...] = ("1",)) -> dict[str, list[Any]]:
    reference = _reference()
    for version in versions:
        register(client, "churn", version=version)
        put = client.put(f"{BASE}/versions/{version}/monitoring/reference", json=_records(reference))
        assert put.status_code == 200, put.text
    return reference


def _log(
    client: TestClient,
    prefix: str,
    start: datetime,
    n: int,
    *,
    shift: float = 0.0,
    correct: float = 1.0,
    version: str = "1",
) -> list[dict[str, Any]]:
    """n predictions a second apart from `start` (prediction 1), labelled so that a share
    `correct` of them is right."""
    rng = np.random.default_rng(len(prefix) + n)
    rows = [
        {
            "request_id": f"{prefix}-{i}",
            "version": version,
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "features": {"f1": float(rng.normal(shift, 1.0)), "f2": str(rng.choice(["a", "b", "c"]))},
            "prediction": 1,
            "probability": 0.8,
        }
        for i in range(n)
    ]
    assert client.post(f"{BASE}/predictions", json=rows).status_code == 200
    labels = [{"request_id": r["request_id"], "label": int(i < correct * n)} for i, r in enumerate(rows)]
    assert client.post(f"{BASE}/labels", json=labels).status_code == 200
    return rows


def _rule(name: str, metric: str, operator: str, threshold: float, **extra: Any) -> dict[str, Any]:
    alert_type = "performance" if ":" not in metric and "drift" not in metric else "drift"
    return {
        "name": name,
        "alert_type": alert_type,
        "severity": "high",
        "metric_name": metric,
        "operator": operator,
        "threshold": threshold,
        "duration_minutes": 0,
        **extra,
    }


def _configure(client: TestClient, rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = client.put(f"{BASE}/monitoring", json={"alert_rules": rules, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def _states(client: TestClient) -> dict[str, dict[str, Any]]:
    return {r["rule"]: r for r in client.get(f"{BASE}/monitoring/alerts").json()["rules"]}


# ---- configuration ----------------------------------------------------------------------------

DOCUMENT_EXAMPLE = {
    "model_name": "churn",
    "monitoring_interval_seconds": 60,
    "drift_detection_enabled": True,
    "alert_rules": [
        {
            "name": "accuracy_drop",
            "alert_type": "performance",
            "severity": "HIGH",
            "metric_name": "accuracy",
            "operator": "less_than",
            "threshold": 0.85,
            "duration_minutes": 5,
        },
        {
            "name": "data_drift",
            "alert_type": "drift",
            "severity": "MEDIUM",
            "metric_name": "drift_score",
            "operator": "greater_than",
            "threshold": 0.1,
            "duration_minutes": 10,
        },
    ],
}


def test_the_orchestration_documents_setup_call_is_stored_and_read_back(client: TestClient) -> None:
    register(client, "churn", version="1")
    response = client.post("/api/v1/monitoring/setup", json=DOCUMENT_EXAMPLE)
    assert response.status_code == 200, response.text
    stored = client.get(f"{BASE}/monitoring").json()
    assert stored == response.json()
    assert stored["model_name"] == "churn" and stored["monitoring_interval_seconds"] == 60
    assert [r["severity"] for r in stored["alert_rules"]] == ["high", "medium"]
    assert stored["window"] == "1h" and stored["version"] is None and stored["drift"]["alpha"] == 0.05
    assert stored["next_evaluation_at"] is not None
    # the same body on the model's own route replaces it; symbols are accepted for operators
    body = {**DOCUMENT_EXAMPLE, "alert_rules": [{**DOCUMENT_EXAMPLE["alert_rules"][0], "operator": "<"}]}
    replaced = client.put(f"{BASE}/monitoring", json=body).json()
    assert [(r["name"], r["operator"]) for r in replaced["alert_rules"]] == [("accuracy_drop", "less_than")]
    assert client.delete(f"{BASE}/monitoring").status_code == 204
    missing = client.get(f"{BASE}/monitoring")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MONITORING_NOT_CONFIGURED"
    assert client.delete(f"{BASE}/monitoring").status_code == 404
    unknown = client.post("/api/v1/monitoring/setup", json={**DOCUMENT_EXAMPLE, "model_name": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "MODEL_NOT_FOUND"


def test_a_bad_configuration_is_one_422_listing_every_problem(client: TestClient) -> None:
    _setup(client)
    body = {
        "model_name": "other",
        "window": "1 hour",
        "alert_rules": [
            _rule("a", "accuracy_score", "less_than", 0.8),
            _rule("a", "dataset_drift", "equal", 1),
            _rule("b", "drift_score:nope", "greater_than", 0.1),
            _rule("c", "accuracy", "less_than", 0.8, alert_type="drift"),
        ],
        "drift": {"features": {"f2": {"method": "ks"}, "ghost": {"method": "psi"}}},
    }
    response = client.put(f"{BASE}/monitoring", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_MONITORING_CONFIG"
    problems = "\n".join(error["details"]["problems"])
    for expected in (
        "model_name 'other'",
        "window: last='1 hour'",
        "'accuracy_score' is not a performance metric",
        "name 'a' is used twice",
        "feature 'nope' is not in the watched version's reference profile",
        "'accuracy' is not a drift metric",
        "feature 'f2': ks needs a numeric column",
        "feature 'ghost' is not in the reference profile",
    ):
        assert expected in problems
    assert len(error["details"]["problems"]) == 8
    disabled = client.put(
        f"{BASE}/monitoring",
        json={"drift_detection_enabled": False, "alert_rules": [_rule("d", "dataset_drift", "equal", 1)]},
    )
    assert "drift_detection_enabled is false" in disabled.json()["error"]["details"]["problems"][0]
    shape = client.put(f"{BASE}/monitoring", json={"alert_rules": [{"name": "x"}], "surprise": 1})
    assert shape.status_code == 422  # the shape itself: missing fields, unknown keys
    assert client.put(f"{BASE}/monitoring", json={"version": "9"}).json()["error"]["details"]["problems"] == [
        "version: model 'churn' has no version '9'"
    ]
    assert client.get(f"{BASE}/monitoring").status_code == 404  # nothing was stored


def test_the_drift_route_applies_the_stored_drift_configuration(client: TestClient) -> None:
    reference = _setup(client)
    rows = _log(client, "w", T0 - timedelta(minutes=20), 300, shift=0.3)
    drift_config = {"features": {"f1": {"method": "psi", "threshold": 0.2}}, "min_rows": 50}
    _configure(client, [], drift=drift_config)
    answer = client.get(f"{BASE}/monitoring/drift").json()
    current = {
        "f1": [r["features"]["f1"] for r in rows],
        "f2": [r["features"]["f2"] for r in rows],
        "prediction": [r["prediction"] for r in rows],
    }
    expected = drift(
        build_profile(reference),
        current,
        DriftConfig(features={"f1": FeatureConfig(method="psi", threshold=0.2)}, min_rows=50),
    )
    assert answer["features"] == expected["features"] and answer["dataset"] == expected["dataset"]
    assert {f["feature"]: f["method"] for f in answer["features"]}["f1"] == "psi"
    page = client.get(f"{BASE}/monitoring/report").text  # the HTML report applies it too
    assert "f1</a></td><td>numeric</td><td>psi</td>" in page


# ---- evaluation and alert states --------------------------------------------------------------


def test_an_alert_goes_pending_firing_resolved_and_every_change_has_its_evidence(client: TestClient) -> None:
    _setup(client)
    _log(client, "bad", T0 - timedelta(minutes=20), 100, correct=0.5)
    _configure(client, [_rule("accuracy_drop", "accuracy", "less_than", 0.9, duration_minutes=5)])
    evaluator = _evaluator(client)

    first = evaluator.evaluate_now("churn", now=T0)
    assert first.metrics["accuracy"] == 0.5 and first.version == "1"
    assert [(c.from_state, c.to_state) for c in first.changes] == [("inactive", "pending")]
    assert evaluator.evaluate_now("churn", now=T0 + timedelta(minutes=3)).changes == []
    assert _states(client)["accuracy_drop"]["state"] == "pending"
    fired = evaluator.evaluate_now("churn", now=T0 + timedelta(minutes=5))
    assert [(c.from_state, c.to_state) for c in fired.changes] == [("pending", "firing")]
    firing = _states(client)["accuracy_drop"]
    assert firing["state"] == "firing" and firing["active_since"] == T0.isoformat().replace("+00:00", "Z")

    later = T0 + timedelta(hours=2)  # a window of good predictions only
    _log(client, "good", later - timedelta(minutes=20), 100, correct=1.0)
    resolved = evaluator.evaluate_now("churn", now=later)
    assert resolved.metrics["accuracy"] == 1.0
    assert [(c.from_state, c.to_state) for c in resolved.changes] == [("firing", "resolved")]

    alerts = client.get(f"{BASE}/monitoring/alerts").json()
    history = alerts["history"]
    assert [(e["from_state"], e["to_state"]) for e in history] == [
        ("firing", "resolved"),
        ("pending", "firing"),
        ("inactive", "pending"),
    ]
    evidence = history[1]["evidence"]
    assert evidence["metric"] == "accuracy" and evidence["value"] == 0.5
    assert evidence["threshold"] == 0.9 and evidence["operator"] == "less_than" and evidence["condition"]
    assert evidence["version"] == "1" and evidence["evaluated_at"].startswith("2026-01-01T10:35:00")
    assert evidence["window"]["count"] == 100 and evidence["window"]["start"].startswith("2026-01-01T09:35")
    assert history[0]["severity"] == "high" and alerts["total"] == 3
    assert alerts["last_evaluation"]["version"] == "1"
    page = client.get(f"{BASE}/monitoring/alerts", params={"limit": 1, "offset": 1}).json()
    assert [e["to_state"] for e in page["history"]] == ["firing"] and page["next_offset"] == 2


def test_insufficient_data_never_fires_a_drift_alert(client: TestClient) -> None:
    _setup(client)
    _log(client, "few", T0 - timedelta(minutes=5), 10, shift=5.0)  # far off, but fewer than min_rows
    rules = [
        _rule("dataset", "dataset_drift", "equal", 1),
        _rule("share", "drift_score", "greater_than", -1),  # would hold for any value
        _rule("f1", "drift_score:f1", "greater_than", -1),
    ]
    _configure(client, rules)
    result = _evaluator(client).evaluate_now("churn", now=T0)
    assert result.changes == []
    for rule in _states(client).values():
        assert rule["state"] == "inactive"
        assert rule["evidence"]["value"] is None and not rule["evidence"]["condition"]
        assert "insufficient data" in rule["evidence"]["reason"]


def test_drift_rules_fire_on_a_shifted_window(client: TestClient) -> None:
    _setup(client)
    _log(client, "shifted", T0 - timedelta(minutes=30), 400, shift=1.0)
    rules = [
        _rule("dataset", "dataset_drift", "equal", 1),
        _rule("f1", "drift_score:f1", "greater_than", 0.1),
        _rule("f2", "drifted:f2", "equal", 1),
    ]
    _configure(client, rules)
    result = _evaluator(client).evaluate_now("churn", now=T0)
    assert result.metrics["drift_score:f1"] is not None and result.metrics["drift_score:f1"] > 0.1
    states = _states(client)
    assert states["dataset"]["state"] == "firing" and states["f1"]["state"] == "firing"
    assert states["f2"]["state"] == "inactive"  # f2 is not shifted


def test_the_watched_version_follows_its_alias_and_defaults_to_the_latest_logged(client: TestClient) -> None:
    _setup(client, versions=("1", "2"))
    _log(client, "v1", T0 - timedelta(minutes=30), 50, version="1")
    evaluator = _evaluator(client)
    _configure(client, [])
    assert evaluator.evaluate_now("churn", now=T0).version == "1"  # of the latest logged prediction
    assert client.put(f"{BASE}/aliases/prod", json={"version": "1"}).status_code == 200
    _configure(client, [], version="@prod")
    assert evaluator.evaluate_now("churn", now=T0).version == "1"
    assert client.put(f"{BASE}/aliases/prod", json={"version": "2"}).status_code == 200
    assert evaluator.evaluate_now("churn", now=T0).version == "2"


def test_changing_or_removing_a_firing_rule_records_the_change(client: TestClient) -> None:
    _setup(client)
    _log(client, "bad", T0 - timedelta(minutes=20), 100, correct=0.5)
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.9)])
    _evaluator(client).evaluate_now("churn", now=T0)
    assert _states(client)["acc"]["state"] == "firing"
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.4)])
    assert _states(client)["acc"]["state"] == "inactive"
    latest = client.get(f"{BASE}/monitoring/alerts").json()["history"][0]
    assert (latest["from_state"], latest["to_state"]) == ("firing", "inactive")
    assert latest["evidence"]["reason"] == "rule removed, changed or disabled"


def test_the_evaluate_route_answers_404_without_a_configuration_and_evaluates_with_one(
    client: TestClient,
) -> None:
    _setup(client)
    missing = client.post(f"{BASE}/monitoring/evaluate")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MONITORING_NOT_CONFIGURED"
    _log(client, "now", datetime.now(UTC) - timedelta(minutes=5), 40, correct=0.25)
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.5)])
    answer = client.post(f"{BASE}/monitoring/evaluate")
    assert answer.status_code == 200, answer.text
    assert answer.json()["metrics"]["accuracy"] == 0.25
    assert [c["to_state"] for c in answer.json()["changes"]] == ["firing"]


# ---- Prometheus -------------------------------------------------------------------------------


Sample = tuple[str, frozenset[tuple[str, str]], float]


def _samples(client: TestClient) -> set[Sample]:
    body = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name.startswith("mlops_model_")
    }


def _sample(name: str, value: float, **labels: str) -> Sample:
    return name, frozenset({"service": "model_registry", "model": "churn", **labels}.items()), value


def test_every_replica_exports_the_latest_evaluation_with_bounded_features(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    _setup(client)
    _log(client, "m", T0 - timedelta(minutes=30), 400, shift=1.0, correct=0.5)
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.9), _rule("f2", "drifted:f2", "equal", 1)])
    _evaluator(client).evaluate_now("churn", now=T0)
    samples = _samples(client)
    for expected in (
        _sample("mlops_model_performance", 0.5, version="1", metric="accuracy"),
        _sample("mlops_model_dataset_drift", 1.0, version="1"),
        _sample("mlops_model_predictions_logged", 400, version="1"),
        _sample("mlops_model_labels_logged", 400, version="1"),
        _sample("mlops_model_window_predictions", 400, version="1"),
        _sample("mlops_model_feature_drifted", 1.0, version="1", feature="f1"),
        _sample("mlops_model_alert_state", 1.0, rule="acc", severity="high", state="firing"),
        _sample("mlops_model_alert_state", 0.0, rule="acc", severity="high", state="pending"),
        _sample("mlops_model_monitoring_interval_seconds", 60),
    ):
        assert expected in samples
    score = "mlops_model_feature_drift_score"
    scores = {dict(labels)["feature"]: v for n, labels, v in samples if n == score}
    assert set(scores) == {"f1", "f2", "prediction"} and scores["f1"] > 0.1

    # another replica (no evaluation of its own) reports the same; a cap of one feature keeps f2,
    # the feature a rule names, and counts the others as dropped
    other = _settings(database_url, tmp_path, monitoring_metric_features=1)
    with TestClient(create_app(other)) as replica:
        theirs = _samples(replica)

    def per_feature(sample: Sample) -> bool:
        return any(key == "feature" for key, _ in sample[1]) or sample[0].endswith("features_dropped")

    assert {s for s in samples if not per_feature(s)} == {s for s in theirs if not per_feature(s)}
    assert {dict(s[1])["feature"] for s in theirs if "feature" in dict(s[1])} == {"f2"}
    assert _sample("mlops_model_drift_features_dropped", 2.0, version="1") in theirs


# ---- the background evaluator -----------------------------------------------------------------


def test_the_background_evaluator_runs_due_models_and_stops_with_the_app(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    _setup(client)
    _log(client, "bg", datetime.now(UTC) - timedelta(minutes=5), 40, correct=0.25)
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.5)], monitoring_interval_seconds=1)
    settings = _settings(database_url, tmp_path, monitoring_evaluator=True, monitoring_poll_seconds=0.05)
    with TestClient(create_app(settings)) as running:
        evaluator: Evaluator = running.app.state.monitoring_evaluator

        def evaluated_twice() -> bool:
            return sum(r.recorded for r in evaluator.runs) >= 2

        wait_until(evaluated_twice, timeout=30, what="two background evaluations")
    assert evaluator._task is None  # stopped with the app
    assert _states(client)["acc"]["state"] == "firing"
    times = [r.finished - r.started for r in evaluator.runs]
    assert all(t >= 0 for t in times)


def _overlaps(runs: list[tuple[str, Run]]) -> list[tuple[Run, Run]]:
    by_model: dict[int, list[tuple[str, Run]]] = {}
    for who, run in runs:
        by_model.setdefault(run.model_id, []).append((who, run))
    found = []
    for items in by_model.values():
        items.sort(key=lambda item: item[1].started)
        for (_, a), (_, b) in itertools.pairwise(items):
            if b.started < a.finished:
                found.append((a, b))
    return found


def test_two_app_instances_never_evaluate_the_same_model_at_once(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    names = [f"m{i}" for i in range(4)]
    for name in names:
        register(client, name, version="1")
        rows = [
            {"request_id": f"{name}-{i}", "version": "1", "features": {"x": i % 7}, "prediction": i % 2}
            for i in range(200)
        ]
        assert client.post(f"/api/models/{name}/predictions", json=rows).status_code == 200
        body = {"monitoring_interval_seconds": 1, "alert_rules": []}
        assert client.put(f"/api/models/{name}/monitoring", json=body).status_code == 200
    settings = [
        _settings(database_url, tmp_path / str(i), monitoring_evaluator=True, monitoring_poll_seconds=0.01)
        for i in range(2)
    ]
    with TestClient(create_app(settings[0])) as a, TestClient(create_app(settings[1])) as b:
        evaluators = [a.app.state.monitoring_evaluator, b.app.state.monitoring_evaluator]
        with client.app.state.db.reader.connect() as conn:
            ids = [int(i) for i in conn.execute(text("SELECT id FROM registered_models")).scalars()]
        barrier = threading.Barrier(2)
        deadline = time.monotonic() + 60

        def race(evaluator: Evaluator) -> None:  # manual evaluations on top of the background ones
            for _ in range(15):
                barrier.wait(timeout=30)
                for model_id in ids:
                    evaluator.evaluate(model_id)

        threads = [threading.Thread(target=race, args=(e,)) for e in evaluators]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))

        def every_model_evaluated() -> bool:
            return {r.model_id for e in evaluators for r in e.runs if r.recorded} == set(ids)

        wait_until(every_model_evaluated, timeout=60, what="every model evaluated")
    runs = [("a", r) for r in evaluators[0].runs] + [("b", r) for r in evaluators[1].runs]
    assert all(any(r.recorded for r in e.runs) for e in evaluators)  # both took part
    assert len(runs) > 4 * len(names)
    assert _overlaps(runs) == []


def test_a_viewer_reads_alerts_an_editor_configures_and_evaluates_and_both_writes_are_audited(
    tmp_path: Path,
) -> None:
    admin, editor, viewer = (secrets.token_hex(16) for _ in range(3))
    keys = f"admin:root:{admin},editor:app:{editor},viewer:dash:{viewer}"
    settings = RegistrySettings(
        data_dir=tmp_path, api_keys=keys, log_level="WARNING", monitoring_evaluator=False
    )
    as_admin, as_editor, as_viewer = ({"Authorization": f"Bearer {k}"} for k in (admin, editor, viewer))
    with TestClient(create_app(settings)) as secured:
        body = {"name": "churn", "framework": "sklearn", "version": "1"}
        assert secured.post("/api/models", json=body, headers=as_editor).status_code == 201
        config = {"alert_rules": [_rule("acc", "accuracy", "less_than", 0.5)]}
        assert secured.put(f"{BASE}/monitoring", json=config).status_code == 401
        assert secured.put(f"{BASE}/monitoring", json=config, headers=as_viewer).status_code == 403
        setup = {**config, "model_name": "churn"}
        assert secured.post("/api/v1/monitoring/setup", json=setup, headers=as_viewer).status_code == 403
        assert secured.put(f"{BASE}/monitoring", json=config, headers=as_editor).status_code == 200
        assert secured.post(f"{BASE}/monitoring/evaluate", headers=as_viewer).status_code == 403
        assert secured.post(f"{BASE}/monitoring/evaluate", headers=as_editor).status_code == 200
        assert secured.get(f"{BASE}/monitoring/alerts", headers=as_viewer).status_code == 200
        assert secured.get(f"{BASE}/monitoring", headers=as_viewer).status_code == 200
        audit = secured.get("/api/audit-log", headers=as_admin).json()["items"]
        routes = [(e["method"], e["route"]) for e in audit]
        assert ("PUT", "/api/models/{name}/monitoring") in routes
        assert ("POST", "/api/models/{name}/monitoring/evaluate") in routes


def test_deleting_a_monitored_model_removes_its_monitoring(client: TestClient) -> None:
    _setup(client)
    _log(client, "d", T0 - timedelta(minutes=20), 50, correct=0.5)
    _configure(client, [_rule("acc", "accuracy", "less_than", 0.9)])
    _evaluator(client).evaluate_now("churn", now=T0)
    assert any(s[0] == "mlops_model_alert_state" for s in _samples(client))
    assert client.delete(BASE).status_code == 204
    assert _samples(client) == set()
    assert _evaluator(client).run_due() == 0
