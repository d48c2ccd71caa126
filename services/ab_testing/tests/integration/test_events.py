"""Events: all-or-nothing validation, idempotency, and sufficient statistics equal to the same
sums computed from the raw events with numpy."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from ab_helpers import create, stats
from fastapi.testclient import TestClient
from mlops_client.ab_routing import evaluate


def _events(rng: np.random.Generator, n_users: int = 120) -> list[dict]:
    events = []
    k = 0
    for u in range(n_users):
        user = f"user{u}"
        for _ in range(int(rng.integers(0, 3))):
            events.append({"metric": "conversion", "value": int(rng.integers(0, 2))})
        for _ in range(int(rng.integers(0, 4))):
            events.append({"metric": "revenue", "value": float(np.round(rng.exponential(10), 2))})
        if rng.random() < 0.7:
            events.append({"metric": "revenue", "covariate": float(np.round(rng.normal(5, 2), 2))})
        for _ in range(int(rng.integers(0, 3))):
            events.append({"metric": "views", "value": 1})
            if rng.random() < 0.4:
                events.append({"metric": "clicks", "value": 1})
        for ev in events[k:]:
            ev.update({"experiment": "model_v2_test", "user_id": user, "event_id": f"ev{k}"})
            k += 1
    return events


def _oracle(definition: dict, events: list[dict]) -> dict[tuple[str, str], dict[str, float]]:
    per_user: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    covariate: dict[str, float] = {}
    for ev in events:
        if "value" in ev:
            per_user[(ev["user_id"], ev["metric"])]["v"].append(ev["value"])
        if "covariate" in ev:
            covariate[ev["user_id"]] = ev["covariate"]
    variant = {u: evaluate(definition, u).variant for u in {e["user_id"] for e in events}}
    out: dict[tuple[str, str], dict[str, float]] = {}
    for v in ("control", "treatment"):
        users = [u for u in variant if variant[u] == v]
        # binary, zero-filled over every user who sent an event (they are exposed)
        y = np.array([1.0 if sum(per_user[(u, "conversion")]["v"]) > 0 else 0.0 for u in users])
        out[(v, "conversion")] = {"sum": y.sum(), "sum_sq": (y**2).sum()}
        # continuous: users with revenue values; covariate cross-products over those with both
        rev_users = [u for u in users if per_user[(u, "revenue")]["v"]]
        r = np.array([sum(per_user[(u, "revenue")]["v"]) for u in rev_users])
        x_users = [u for u in rev_users if u in covariate]
        x = np.array([covariate[u] for u in x_users])
        xy = np.array([covariate[u] * sum(per_user[(u, "revenue")]["v"]) for u in x_users])
        out[(v, "revenue")] = {
            "n": len(rev_users),
            "sum": r.sum(),
            "sum_sq": (r**2).sum(),
            "n_cov": len(x_users),
            "sum_x": x.sum(),
            "sum_x_sq": (x**2).sum(),
            "sum_xy": xy.sum(),
        }
        ratio_users = [u for u in users if per_user[(u, "views")]["v"] or per_user[(u, "clicks")]["v"]]
        a = np.array([sum(per_user[(u, "clicks")]["v"]) for u in ratio_users])
        b = np.array([sum(per_user[(u, "views")]["v"]) for u in ratio_users])
        out[(v, "ctr")] = {
            "n": len(ratio_users),
            "sum": a.sum(),
            "sum_sq": (a**2).sum(),
            "sum_den": b.sum(),
            "sum_den_sq": (b**2).sum(),
            "sum_num_den": (a * b).sum(),
        }
    return out


def test_sufficient_statistics_match_numpy_on_the_raw_events(ab: TestClient) -> None:
    create(ab)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    events = _events(np.random.default_rng(3))
    # in uneven batches, so users' aggregates change across requests (old -> new contributions)
    for start, stop in [(0, 37), (37, 200), (200, len(events))]:
        answer = ab.post("/api/events", json={"events": events[start:stop]})
        assert answer.status_code == 200, answer.text
    got = stats(ab, "model_v2_test")
    expected = _oracle(definition, events)
    for key, fields in expected.items():
        for name, value in fields.items():
            assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)


def test_events_are_idempotent_on_their_id(ab: TestClient) -> None:
    create(ab)
    batch = [
        {
            "event_id": f"e{i}",
            "experiment": "model_v2_test",
            "user_id": f"u{i}",
            "metric": "revenue",
            "value": 2,
        }
        for i in range(20)
    ]
    assert ab.post("/api/events", json={"events": batch}).json()["accepted"] == 20
    before = stats(ab, "model_v2_test")
    again = ab.post("/api/events", json={"events": batch + batch[:3]}).json()
    assert again == {"accepted": 0, "duplicates": 23, "not_in_experiment": 0}
    assert stats(ab, "model_v2_test") == before
    single = ab.post(
        "/api/events",
        json={
            "event_id": "solo",
            "experiment": "model_v2_test",
            "user_id": "u1",
            "metric": "revenue",
            "value": 1.5,
        },
    )
    assert single.json()["accepted"] == 1


def test_a_bad_event_rejects_the_whole_batch_naming_it(ab: TestClient) -> None:
    create(ab)
    good = {"experiment": "model_v2_test", "user_id": "u1", "metric": "revenue", "value": 1}
    cases = [
        ({**good, "metric": "nope"}, 422, "UNKNOWN_METRIC"),
        ({**good, "variant": "ghost"}, 422, "UNKNOWN_VARIANT"),
        ({**good, "value": "12"}, 422, "must be a number"),
        ({**good, "value": True}, 422, "must be a number"),
        ({**good, "experiment": "nope"}, 404, "EXPERIMENT_NOT_FOUND"),
        ({**good, "metric": "ctr"}, 422, "UNKNOWN_METRIC"),  # a ratio is fed through its components
        ({k: v for k, v in good.items() if k != "value"}, 422, "MISSING_VALUE"),
    ]
    for bad, status, fragment in cases:
        response = ab.post("/api/events", json={"events": [good, good | {"user_id": "u2"}, bad]})
        assert response.status_code == status, (bad, response.text)
        assert fragment in response.text
        if status == 422 and "must be a number" not in fragment:
            assert response.json()["error"]["details"]["index"] == 2
    assert stats(ab, "model_v2_test") == {}
    non_finite = ab.post(
        "/api/events",
        content=b'{"experiment": "model_v2_test", "user_id": "u", "metric": "revenue", "value": NaN}',
        headers={"content-type": "application/json"},
    )
    # NaN is not JSON: refused before validation
    assert non_finite.status_code == 400 and non_finite.json()["error"]["code"] == "INVALID_JSON"
    draft = create(ab, "draft_one", start=False)
    refused = ab.post("/api/events", json={**good, "experiment": draft["key"]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "EXPERIMENT_NOT_COLLECTING"


def test_users_outside_the_experiment_are_not_counted(ab: TestClient) -> None:
    create(ab, coverage=0.2)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    users = [f"u{i}" for i in range(200)]
    inside = [u for u in users if evaluate(definition, u).in_experiment]
    answer = ab.post(
        "/api/events",
        json={
            "events": [
                {"experiment": "model_v2_test", "user_id": u, "metric": "revenue", "value": 1} for u in users
            ]
        },
    ).json()
    assert answer["accepted"] == len(inside) and answer["not_in_experiment"] == len(users) - len(inside)
    assert 20 < len(inside) < 60
