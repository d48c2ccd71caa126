"""Canary rollouts and promotion against a real model registry process.

- a candidate with a real latency regression is rolled back by the background controller on its
  own: traffic back to the baseline, experiment stopped, the registry alias restored, the decision
  recorded with its evidence;
- a healthy candidate advances through every stage and is promoted: the alias moves to it;
- ``POST /api/experiments/{e}/promote`` moves the alias to the winner (or says why there is none).

Users are routed through the API and their events posted through it; the A/B service runs in
process (TestClient) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ab_testing.app import create_app
from ab_testing.rollouts import promotion
from ab_testing.settings import AbTestingSettings
from fastapi.testclient import TestClient
from mlops_client import RegistryClient
from mlops_kit.testing import ServiceProcess, free_port, wait_until

STAGES = [5.0, 10.0, 25.0, 50.0, 100.0]


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("canary-registry")
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture()
def registry(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryClient]:
    monkeypatch.setenv("MLOPS_MODEL_REGISTRY_URL", registry_url)
    with RegistryClient(registry_url) as client:
        yield client


@contextmanager
def ab_service(backend: str, tmp: Path, **settings: Any) -> Iterator[TestClient]:
    """The A/B app on its own database (no other app's controller looks at its experiments)."""
    values: dict[str, Any] = {"data_dir": tmp, "log_level": "WARNING", "exposure_flush_seconds": 0.05}
    if backend == "sqlite":
        with TestClient(create_app(AbTestingSettings(**values, **settings))) as client:
            yield client
        return
    from mlops_kit.testing import fresh_postgres_database

    with (
        fresh_postgres_database("abcanary") as url,
        TestClient(create_app(AbTestingSettings(**values, database_url=url, **settings))) as client,
    ):
        yield client


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def ab(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """Driven by the evaluate endpoint: the background controller's interval is an hour."""
    with ab_service(
        backend, tmp_path_factory.mktemp(f"canary-{backend}"), controller_interval_seconds=3600
    ) as c:
        yield c


def model(registry: RegistryClient) -> str:
    """A model with versions 1 (baseline) and 2 (candidate); production -> 1."""
    name = f"churn-{secrets.token_hex(4)}"
    for _ in range(2):
        registry.register_model(name, framework="sklearn")
    registry.set_alias(name, "production", "1")
    return name


def canary_body(key: str, model_name: str, **canary: Any) -> dict[str, Any]:
    return {
        "key": key,
        "model_name": model_name,
        "mode": "canary",
        "variants": [
            {"name": "baseline", "weight": 0.5, "model_version": "1"},
            {"name": "candidate", "weight": 0.5, "model_version": "2"},
        ],
        "metrics": [
            {"name": "conversion", "type": "binary"},
            {"name": "latency_ms", "type": "continuous", "direction": "lower"},
        ],
        "primary_metric": "conversion",
        "guardrail_metrics": ["latency_ms"],
        "canary": {"stages": STAGES, "stage_seconds": 0.001, "min_samples": 20, "alpha": 0.05} | canary,
    }


def start_canary(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/api/experiments", json=body).status_code == 201
    assert client.post(f"/api/experiments/{body['key']}/start").status_code == 200


def simulate(
    client: TestClient,
    key: str,
    users: list[str],
    *,
    latency: dict[str, float],
    conversion: dict[str, float],
    rng: np.random.Generator,
    tag: str,
) -> dict[str, int]:
    """Route the users and post one latency and one conversion event each (their variant is the
    service's assignment: events carry none). Returns users per variant."""
    answer = client.post("/api/route/batch", json={"experiment": key, "user_ids": users})
    assert answer.status_code == 200, answer.text
    events, counts = [], {}
    for a in answer.json()["assignments"]:
        v, user = a["variant"], a["user_id"]
        counts[v] = counts.get(v, 0) + 1
        common = {"experiment": key, "user_id": user}
        events.append(
            common
            | {
                "event_id": f"{tag}-{user}-l",
                "metric": "latency_ms",
                "value": float(rng.normal(latency[v], 15)),
            }
        )
        events.append(
            common
            | {
                "event_id": f"{tag}-{user}-c",
                "metric": "conversion",
                "value": int(rng.random() < conversion[v]),
            }
        )
    posted = client.post("/api/events", json={"events": events})
    assert posted.status_code == 200 and posted.json()["accepted"] == len(events), posted.text
    return counts


def decisions(client: TestClient, key: str) -> list[dict[str, Any]]:
    return client.get(f"/api/experiments/{key}/decisions").json()["items"]


def poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    return wait_until(check, timeout=timeout, what=what, tolerate=())


# ---- rollback ---------------------------------------------------------------------------------------
def test_a_guardrail_regression_rolls_back_on_its_own(
    backend: str, registry: RegistryClient, tmp_path: Path
) -> None:
    name = model(registry)
    key = f"canary-regress-{backend}"
    with ab_service(backend, tmp_path, controller_interval_seconds=0.1) as ab:
        start_canary(ab, canary_body(key, name))
        # the controller's first look records where the alias points (production -> 1) ...
        state = poll(
            lambda: ab.get(f"/api/experiments/{key}").json()["canary"].get("previous_alias"),
            timeout=10,
            what="the canary's first evaluation",
        )
        assert state["version"] == "1"
        # ... then a deploy script points production at the candidate too early
        registry.set_alias(name, "production", "2")

        rng = np.random.default_rng(11)
        users = [f"u{i}" for i in range(800)]
        counts = simulate(
            ab,
            key,
            users,
            latency={"baseline": 100.0, "candidate": 160.0},
            conversion={"baseline": 0.1, "candidate": 0.1},
            rng=rng,
            tag="s1",
        )
        assert counts["candidate"] >= 20

        rollback = poll(
            lambda: next(
                (
                    d
                    for d in decisions(ab, key)
                    if d["kind"] == "rollback" and d["details"]["registry"]["status"] == "done"
                ),
                None,
            ),
            timeout=15,
            what="the automatic rollback",
        )
        # the evidence: the guardrail's comparison, one-sided and sequential
        details = rollback["details"]
        assert details["reasons"] == ["guardrail regression: latency_ms"]
        evidence = details["evidence"]
        assert evidence["percent"] == 5.0 and evidence["stage"] == 0 and evidence["phase"] == 1
        assert evidence["exposures"] == {"baseline": counts["baseline"], "candidate": counts["candidate"]}
        (latency,) = evidence["guardrails"]
        assert latency["metric"] == "latency_ms" and latency["regression"] is True
        assert latency["test"] == "msprt_one_sided" and latency["p_value"] < 0.05
        assert latency["candidate"]["mean"] > latency["baseline"]["mean"] + 40
        assert latency["candidate"]["n"] == counts["candidate"]
        assert evidence["primary"]["metric"] == "conversion" and evidence["primary"]["regression"] is False
        # the alias is back where it was when the canary started
        assert details["registry"] | {"at": None} == {
            "status": "done",
            "action": "restore",
            "model": name,
            "alias": "production",
            "version": "1",
            "from": "2",
            "to": "1",
            "changed": True,
            "at": None,
        }
        assert registry.get_alias(name, "production").version == "1"

        # traffic: everyone on the baseline; the experiment stopped; a last phase [1, 0]
        experiment = ab.get(f"/api/experiments/{key}").json()
        assert experiment["status"] == "stopped"
        assert (
            experiment["canary"]["status"] == "rolled_back" and "pending_registry" not in experiment["canary"]
        )
        assert [v["weight"] for v in experiment["variants"]] == [1.0, 0.0]
        phases = ab.get(f"/api/experiments/{key}/phases").json()["items"]
        assert [p["reason"] for p in phases] == ["created", "rollback"]
        routed = ab.post("/api/route/batch", json={"experiment": key, "user_ids": users[:300]}).json()
        assert {(a["variant"], a["model_version"]) for a in routed["assignments"]} == {("baseline", "1")}
        # one rollback, nothing after it: the controller leaves a finished canary alone
        ticks = ab.app.state.rollouts.ticks  # type: ignore[attr-defined]
        poll(lambda: ab.app.state.rollouts.ticks >= ticks + 3, timeout=10, what="three more ticks")  # type: ignore[attr-defined]
        kinds = [d["kind"] for d in decisions(ab, key)]
        assert kinds.count("rollback") == 1 and kinds[-1] == "rollback"
        assert set(kinds) <= {"hold", "rollback"}


def test_an_unreachable_registry_is_retried_until_the_alias_is_restored(
    ab: TestClient, registry: RegistryClient, registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = model(registry)
    key = "canary-registry-down"
    start_canary(ab, canary_body(key, name))
    monkeypatch.setenv("MLOPS_MODEL_REGISTRY_URL", f"http://127.0.0.1:{free_port()}")
    first = ab.post(f"/api/experiments/{key}/evaluate").json()
    assert first["evaluation"]["action"] == "hold" and "previous_alias" not in first["state"]
    registry.set_alias(name, "production", "2")
    simulate(
        ab,
        key,
        [f"r{i}" for i in range(800)],
        latency={"baseline": 100.0, "candidate": 170.0},
        conversion={"baseline": 0.1, "candidate": 0.1},
        rng=np.random.default_rng(5),
        tag="r",
    )
    answer = ab.post(f"/api/experiments/{key}/evaluate")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "stopped" and result["state"]["status"] == "rolled_back"
    (rollback,) = [d for d in result["decisions"] if d["kind"] == "rollback"]
    registry_outcome = rollback["details"]["registry"]
    # the alias target at the start is unknown: the baseline version is restored
    assert registry_outcome["status"] == "retrying" and registry_outcome["version"] == "1"
    assert registry_outcome["error"]["kind"] == "unreachable"
    assert result["state"]["pending_registry"]["attempts"] == 1
    assert registry.get_alias(name, "production").version == "2"
    # the registry is back: the next look restores the alias
    monkeypatch.setenv("MLOPS_MODEL_REGISTRY_URL", registry_url)
    again = ab.post(f"/api/experiments/{key}/evaluate").json()
    assert again["state"]["registry"]["status"] == "done" and "pending_registry" not in again["state"]
    assert registry.get_alias(name, "production").version == "1"
    (rollback,) = [d for d in decisions(ab, key) if d["kind"] == "rollback"]
    assert (
        rollback["details"]["registry"]["status"] == "done" and rollback["details"]["registry"]["from"] == "2"
    )


# ---- advance and promote ----------------------------------------------------------------------------
def test_a_healthy_canary_advances_through_every_stage_and_is_promoted(
    ab: TestClient, registry: RegistryClient
) -> None:
    name = model(registry)
    key = "canary-healthy"
    start_canary(ab, canary_body(key, name))
    first = ab.post(f"/api/experiments/{key}/evaluate").json()
    assert first["evaluation"]["action"] == "hold"
    assert first["evaluation"]["reasons"] == ["min_samples", "untestable:latency_ms"]
    assert first["state"]["previous_alias"]["version"] == "1"
    # holds are recorded once per change of reasons
    again = ab.post(f"/api/experiments/{key}/evaluate").json()
    assert again["evaluation"]["action"] == "hold" and again["decisions"] == []

    rng = np.random.default_rng(3)
    for stage, percent in enumerate(STAGES[:-1]):
        n = math.ceil(20 / (percent / 100) * 1.6) + 100
        counts = simulate(
            ab,
            key,
            [f"s{stage}-{i}" for i in range(n)],
            latency={"baseline": 100.0, "candidate": 95.0},
            conversion={"baseline": 0.10, "candidate": 0.12},
            rng=rng,
            tag=f"s{stage}",
        )
        assert min(counts.values()) >= 20, counts
        result = ab.post(f"/api/experiments/{key}/evaluate").json()
        (decision,) = result["decisions"]
        expected = "promote" if percent == 50.0 else "advance"
        assert decision["kind"] == expected, decision
        assert decision["details"]["from_percent"] == percent
        assert decision["details"]["to_percent"] == STAGES[stage + 1]
        assert decision["phase"] == stage + 1
        latency = decision["details"]["evidence"]["guardrails"][0]
        assert latency["testable"] and not latency["regression"] and latency["p_value"] == 1.0
        if expected == "advance":
            # the next stage's weights are served at once (the routing cache was invalidated)
            definition = ab.get(f"/api/experiments/{key}/definition").json()
            assert [v["weight"] for v in definition["variants"]] == pytest.approx(
                [1 - STAGES[stage + 1] / 100, STAGES[stage + 1] / 100]
            )
            assert definition["seed"] == key  # users keep their bucket: no re-randomization
            share = ab.post(
                "/api/route/batch", json={"experiment": key, "user_ids": [f"x{i}" for i in range(1000)]}
            ).json()["assignments"]
            candidate_share = sum(a["variant"] == "candidate" for a in share) / 1000
            assert candidate_share == pytest.approx(STAGES[stage + 1] / 100, abs=0.05)

    promote = decisions(ab, key)[-1]
    assert promote["kind"] == "promote"
    assert promote["details"]["registry"]["status"] == "done"
    assert promote["details"]["registry"]["from"] == "1" and promote["details"]["registry"]["to"] == "2"
    assert registry.get_alias(name, "production").version == "2"
    experiment = ab.get(f"/api/experiments/{key}").json()
    assert experiment["status"] == "stopped" and experiment["canary"]["status"] == "promoted"
    phases = ab.get(f"/api/experiments/{key}/phases").json()["items"]
    assert [p["variants"][1]["weight"] for p in phases] == [0.05, 0.1, 0.25, 0.5, 1.0]
    assert [p["reason"] for p in phases][-1] == "promote"
    kinds = [d["kind"] for d in decisions(ab, key)]
    assert kinds == ["hold", "advance", "advance", "advance", "promote"]
    # a finished canary is not evaluated again
    assert ab.post(f"/api/experiments/{key}/evaluate").json()["decisions"] == []
    # everyone is now served the promoted candidate, as the alias says
    for user in ("u1", "u2", "u3", "u4"):
        served = ab.get("/api/route", params={"user_id": user, "experiment": key}).json()
        assert served["model_version"] == "2" and served["variant"] == "candidate"


# ---- promote endpoint -------------------------------------------------------------------------------
def ab_body(key: str, model_name: str | None) -> dict[str, Any]:
    return {
        "key": key,
        "model_name": model_name,
        "variants": [
            {"name": "control", "weight": 0.34, "model_version": "1"},
            {"name": "treatment", "weight": 0.33, "model_version": "2"},
            {"name": "unversioned", "weight": 0.33},
        ],
        "metrics": [{"name": "conversion", "type": "binary"}],
        "primary_metric": "conversion",
    }


def test_promote_moves_the_alias_to_the_winner(ab: TestClient, registry: RegistryClient) -> None:
    name = model(registry)
    key = "promote-winner"
    assert ab.post("/api/experiments", json=ab_body(key, name)).status_code == 201
    assert ab.post(f"/api/experiments/{key}/start").status_code == 200
    # no data yet: no winner, and the answer says why
    none = ab.post(f"/api/experiments/{key}/promote", json={})
    assert none.status_code == 409 and none.json()["error"]["code"] == "NO_WINNER"
    assert "significantly better than 'control'" in none.json()["error"]["message"]
    _conversions(ab, key, 1500, {"control": 0.08, "treatment": 0.25, "unversioned": 0.08})

    answer = ab.post(f"/api/experiments/{key}/promote", json={"alias": "champion"})
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert decision["kind"] == "promote" and decision["details"]["variant"] == "treatment"
    assert decision["details"]["chosen_by"] == "primary_metric"
    assert decision["details"]["registry"] | {"at": None} == {
        "status": "done",
        "action": "promote",
        "model": name,
        "alias": "champion",
        "from": None,
        "to": "2",
        "changed": True,
        "at": None,
    }
    evidence = decision["details"]["evidence"]
    assert evidence["metric"] == "conversion" and evidence["correction"] == "holm"
    treatment = next(v for v in evidence["variants"] if v["variant"] == "treatment")
    assert treatment["significantly_better"] and treatment["p_value_adjusted"] < 0.05
    assert registry.get_alias(name, "champion").version == "2"
    assert registry.get_alias(name, "production").version == "1"
    assert [d["id"] for d in decisions(ab, key)] == [decision["id"]]

    # an explicit variant; one without a model version; an unknown one
    back = ab.post(f"/api/experiments/{key}/promote", json={"variant": "control", "alias": "champion"})
    assert back.status_code == 200 and back.json()["details"]["registry"]["to"] == "1"
    assert registry.get_alias(name, "champion").version == "1"
    missing = ab.post(f"/api/experiments/{key}/promote", json={"variant": "unversioned"})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "NO_MODEL_VERSION"
    unknown = ab.post(f"/api/experiments/{key}/promote", json={"variant": "nope"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "UNKNOWN_VARIANT"


def _conversions(client: TestClient, key: str, n: int, rates: dict[str, float]) -> None:
    rng = np.random.default_rng(9)
    users = [f"p{i}" for i in range(n)]
    assignments = client.post("/api/route/batch", json={"experiment": key, "user_ids": users}).json()
    events = [
        {
            "event_id": f"c-{a['user_id']}",
            "experiment": key,
            "user_id": a["user_id"],
            "metric": "conversion",
            "value": int(rng.random() < rates[a["variant"]]),
        }
        for a in assignments["assignments"]
    ]
    assert client.post("/api/events", json={"events": events}).status_code == 200


def test_promote_refusals(ab: TestClient, registry: RegistryClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ab.post("/api/experiments", json=ab_body("promote-no-model", None)).status_code == 201
    no_model = ab.post("/api/experiments/promote-no-model/promote", json={"variant": "treatment"})
    assert no_model.status_code == 422 and no_model.json()["error"]["code"] == "NO_MODEL_NAME"

    name = model(registry)
    assert ab.post("/api/experiments", json=ab_body("promote-refused", name + "-unknown")).status_code == 201
    refused = ab.post("/api/experiments/promote-refused/promote", json={"variant": "treatment"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "REGISTRY_REJECTED"

    assert ab.post("/api/experiments", json=ab_body("promote-down", name)).status_code == 201
    monkeypatch.setenv("MLOPS_MODEL_REGISTRY_URL", f"http://127.0.0.1:{free_port()}")
    down = ab.post("/api/experiments/promote-down/promote", json={"variant": "treatment"})
    assert down.status_code == 503 and down.json()["error"]["code"] == "REGISTRY_UNAVAILABLE"
    for key in ("promote-no-model", "promote-refused", "promote-down"):
        assert decisions(ab, key) == []  # nothing happened, nothing recorded

    evaluate = ab.post("/api/experiments/promote-down/evaluate")
    assert evaluate.status_code == 409 and evaluate.json()["error"]["code"] == "NOT_A_ROLLOUT"


# ---- one alias decision at a time ------------------------------------------------------------------
def test_the_controller_waits_while_a_promotion_holds_the_experiment(
    ab: TestClient, registry: RegistryClient
) -> None:
    name = model(registry)
    body = canary_body("held-canary", name, stages=[50.0, 100.0], min_samples=1)
    start_canary(ab, body | {"metrics": [], "primary_metric": None, "guardrail_metrics": []})
    users = {"experiment": "held-canary", "user_ids": [f"h{i}" for i in range(40)]}
    assert ab.post("/api/route/batch", json=users).status_code == 200
    ab.app.state.exposures.flush()  # type: ignore[attr-defined]
    db = ab.app.state.db  # type: ignore[attr-defined]
    move = {"model": name, "alias": "production", "version": "1"}
    held = promotion.claim(db, "held-canary", move, {"variant": "baseline", "chosen_by": "request"})

    waiting = ab.post("/api/experiments/held-canary/evaluate").json()
    assert waiting["evaluation"]["action"] == "wait" and waiting["decisions"] == []
    second = ab.post("/api/experiments/held-canary/promote", json={"variant": "candidate"})
    assert second.status_code == 409 and second.json()["error"]["code"] == "DECISION_IN_PROGRESS"
    assert registry.get_alias(name, "production").version == "1"

    promotion.release(db, held)  # the holder failed: its decision goes with the claim
    done = ab.post("/api/experiments/held-canary/evaluate").json()
    assert [d["kind"] for d in done["decisions"]] == ["promote"]
    assert [d["kind"] for d in decisions(ab, "held-canary") if d["kind"] != "hold"] == ["promote"]
    assert registry.get_alias(name, "production").version == "2"
