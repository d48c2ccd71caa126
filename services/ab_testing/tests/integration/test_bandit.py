"""Thompson-sampling bandits through the API: nothing moves before the burn-in; after it the weights
move toward the better arm, every arm keeps its floor, routing follows at once, and every update
is recorded with its posterior figures (reproducible from its seed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from ab_testing.app import create_app
from ab_testing.rollouts import bandit
from ab_testing.settings import AbTestingSettings
from fastapi.testclient import TestClient


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on its own database, driven by the evaluate endpoint (the loop's interval is an hour)."""
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp(f"bandit-{request.param}"),
        "log_level": "WARNING",
        "exposure_flush_seconds": 0.05,
        "controller_interval_seconds": 3600,
    }
    if request.param == "sqlite":
        with TestClient(create_app(AbTestingSettings(**values))) as client:
            yield client
        return
    from mlops_kit.testing import fresh_postgres_database

    with (
        fresh_postgres_database("abbandit") as url,
        TestClient(create_app(AbTestingSettings(**values, database_url=url))) as client,
    ):
        yield client


def create(client: TestClient, key: str, metric: dict[str, Any], arms: list[str], **config: Any) -> None:
    body = {
        "key": key,
        "mode": "bandit",
        "variants": [{"name": a, "weight": round(1 / len(arms), 4)} for a in arms],
        "metrics": [metric],
        "primary_metric": metric["name"],
        "bandit": config,
    }
    body["variants"][0]["weight"] = round(1 - sum(v["weight"] for v in body["variants"][1:]), 4)
    assert client.post("/api/experiments", json=body).status_code == 201
    assert client.post(f"/api/experiments/{key}/start").status_code == 200


def play(
    client: TestClient, key: str, users: list[str], outcome: Any, metric: str, tag: str
) -> dict[str, int]:
    """Route the users, post one outcome each (``outcome(variant)``); users per arm."""
    answer = client.post("/api/route/batch", json={"experiment": key, "user_ids": users}).json()
    counts: dict[str, int] = {}
    events = []
    for a in answer["assignments"]:
        counts[a["variant"]] = counts.get(a["variant"], 0) + 1
        events.append(
            {
                "event_id": f"{tag}-{a['user_id']}",
                "experiment": key,
                "user_id": a["user_id"],
                "metric": metric,
                "value": outcome(a["variant"]),
            }
        )
    assert client.post("/api/events", json={"events": events}).status_code == 200
    return counts


def evaluate(client: TestClient, key: str) -> dict[str, Any]:
    answer = client.post(f"/api/experiments/{key}/evaluate")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_binary_bandit_moves_weight_to_the_best_arm_after_the_burn_in(ab: TestClient) -> None:
    key = "bandit-conversion"
    arms = ["a", "b", "c"]
    create(
        ab,
        key,
        {"name": "conversion", "type": "binary"},
        arms,
        burn_in_users=600,
        update_seconds=3600,
        min_weight=0.1,
    )
    rates = {"a": 0.05, "b": 0.08, "c": 0.20}
    rng = np.random.default_rng(4)

    def convert(v: str) -> int:
        return int(rng.random() < rates[v])

    play(ab, key, [f"w{i}" for i in range(300)], convert, "conversion", "w")
    before = evaluate(ab, key)
    assert before["decisions"] == [] and before["state"].get("updates") is None  # still burning in

    play(ab, key, [f"u{i}" for i in range(600)], convert, "conversion", "u")
    first = evaluate(ab, key)
    (decision,) = first["decisions"]
    assert decision["kind"] == "reweight" and decision["phase"] == 1
    details = decision["details"]
    assert details["update"] == 1 and details["exposed_users"] == 900 and details["burn_in_users"] == 600
    weights = details["weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert min(weights.values()) >= 0.1 - 1e-9
    assert weights["c"] > 0.6 and weights["c"] == max(weights.values())
    by_arm = {a["variant"]: a for a in details["arms"]}
    assert by_arm["c"]["p_best"] > 0.9
    assert by_arm["c"]["mean"] > by_arm["a"]["mean"]
    assert by_arm["a"]["posterior"]["alpha"] == 1 + round(by_arm["a"]["mean"] * by_arm["a"]["n"])
    assert [by_arm[a]["weight_before"] for a in arms] == [0.3334, 0.3333, 0.3333]
    # reproducible: the same draws from the recorded posteriors give the same probabilities
    posts = [{k: float(v) for k, v in by_arm[a]["posterior"].items()} for a in arms]
    again = bandit.probability_best("binary", posts, "higher", seed=details["seed"])
    assert again == pytest.approx([by_arm[a]["p_best"] for a in arms], abs=1e-3)

    # the weights are served at once, in the same phase (results accumulate), same seed
    definition = ab.get(f"/api/experiments/{key}/definition").json()
    assert definition["phase"] == 1 and definition["seed"] == key
    assert {v["name"]: v["weight"] for v in definition["variants"]} == weights
    new_users = [f"n{i}" for i in range(2000)]
    routed = ab.post("/api/route/batch", json={"experiment": key, "user_ids": new_users}).json()
    share_c = sum(a["variant"] == "c" for a in routed["assignments"]) / len(new_users)
    assert share_c == pytest.approx(weights["c"], abs=0.05)

    # on a schedule: not again before update_seconds
    assert evaluate(ab, key)["decisions"] == []
    assert [d["kind"] for d in ab.get(f"/api/experiments/{key}/decisions").json()["items"]] == ["reweight"]


def test_continuous_bandit_minimises_and_updates_on_its_schedule(ab: TestClient) -> None:
    key = "bandit-latency"
    create(
        ab,
        key,
        {"name": "latency_ms", "type": "continuous", "direction": "lower"},
        ["slow", "fast"],
        burn_in_users=200,
        update_seconds=0.001,
        min_weight=0.05,
    )
    rng = np.random.default_rng(8)
    means = {"slow": 120.0, "fast": 100.0}

    def latency(v: str) -> float:
        return float(rng.normal(means[v], 20))

    play(ab, key, [f"u{i}" for i in range(400)], latency, "latency_ms", "u")
    first = evaluate(ab, key)["decisions"][0]["details"]
    assert first["weights"] == {"slow": 0.05, "fast": 0.95}  # the floor holds the loser
    by_arm = {a["variant"]: a for a in first["arms"]}
    assert by_arm["fast"]["p_best"] > 0.99 and by_arm["fast"]["posterior"]["mean"] < 110

    play(ab, key, [f"v{i}" for i in range(200)], latency, "latency_ms", "v")
    second = evaluate(ab, key)["decisions"][0]["details"]
    assert second["update"] == 2 and second["seed"] != first["seed"]
    assert second["weights"] == {"slow": 0.05, "fast": 0.95}
    # results accumulate in the one phase: the second update saw every user so far
    assert sum(a["n"] for a in second["arms"]) == 600
    experiment = ab.get(f"/api/experiments/{key}").json()
    assert experiment["phase"] == 1 and experiment["bandit"]["updates"] == 2
    assert {v["name"]: v["weight"] for v in experiment["variants"]} == {"slow": 0.05, "fast": 0.95}
