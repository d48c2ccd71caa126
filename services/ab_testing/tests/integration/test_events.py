"""Events: all-or-nothing validation, idempotency, and sufficient statistics equal to the same
sums computed from the raw events with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from ab_helpers import create, oracle_stats, sample_events, stats
from fastapi.testclient import TestClient
from mlops_client.ab_routing import evaluate


def test_sufficient_statistics_match_numpy_on_the_rawsample_events(ab: TestClient) -> None:
    create(ab)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    events = sample_events(np.random.default_rng(3))
    # in uneven batches folded one by one, so users' aggregates change across folds (old -> new
    # contributions), by a read's catch-up, by the folder processes, and with two batches at once
    for start, stop in [(0, 37), (37, 200), (200, 330), (330, len(events))]:
        answer = ab.post("/api/events", json={"events": events[start:stop]})
        assert answer.status_code == 200, answer.text
        if stop == 37:
            stats(ab, "model_v2_test")
        elif stop == 200:
            assert ab.app.state.folder.wait_drained(60)  # type: ignore[attr-defined]
    got = stats(ab, "model_v2_test")
    expected = oracle_stats(definition, events)
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
        ({**good, "value": "12"}, 422, "body.events.2.value: Input should be a valid number"),
        ({**good, "value": True}, 422, "body.events.2.value: Input should be a valid number"),
        ({**good, "experiment": "nope"}, 404, "EXPERIMENT_NOT_FOUND"),
        ({**good, "metric": "ctr"}, 422, "UNKNOWN_METRIC"),  # a ratio is fed through its components
        ({k: v for k, v in good.items() if k != "value"}, 422, "MISSING_VALUE"),
    ]
    for bad, status, fragment in cases:
        response = ab.post("/api/events", json={"events": [good, good | {"user_id": "u2"}, bad]})
        assert response.status_code == status, (bad, response.text)
        assert fragment in response.text
        if status == 422 and "valid number" not in fragment:
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
