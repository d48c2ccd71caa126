"""Routing over HTTP agrees with the shared assignment function; overrides; exposures once."""

from __future__ import annotations

import time

from ab_helpers import create
from fastapi.testclient import TestClient
from mlops_client.ab_routing import evaluate


def test_route_is_the_shared_deterministic_assignment(ab: TestClient) -> None:
    create(ab)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    assert definition["status"] == "running" and definition["hash_version"] == 2
    counts = {"control": 0, "treatment": 0}
    for i in range(300):
        user = f"user_{i}"
        answer = ab.get("/api/route", params={"user_id": user, "experiment": "model_v2_test"}).json()
        local = evaluate(definition, user)
        assert (answer["variant"], answer["hash"], answer["reason"]) == (
            local.variant,
            local.hash,
            local.reason,
        )
        assert answer["model_version"] == {"control": "v1.0", "treatment": "v2.0"}[answer["variant"]]
        counts[answer["variant"]] += 1
    assert 110 < counts["control"] < 190
    again = ab.get("/api/route", params={"user_id": "user_7", "experiment": "model_v2_test"}).json()
    assert again == ab.get("/api/route", params={"user_id": "user_7", "experiment": definition["id"]}).json()


def test_overrides_batch_and_not_running(ab: TestClient) -> None:
    create(ab)
    natural = ab.get("/api/route", params={"user_id": "vip", "experiment": "model_v2_test"}).json()["variant"]
    forced = "treatment" if natural == "control" else "control"
    put = ab.put("/api/experiments/model_v2_test/overrides/vip", json={"variant": forced})
    assert put.status_code == 200
    answer = ab.get("/api/route", params={"user_id": "vip", "experiment": "model_v2_test"}).json()
    assert answer["variant"] == forced and answer["reason"] == "override"
    bad = ab.put("/api/experiments/model_v2_test/overrides/vip", json={"variant": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "UNKNOWN_VARIANT"
    batch = ab.post(
        "/api/route/batch", json={"experiment": "model_v2_test", "user_ids": ["vip", "a", "b"]}
    ).json()
    assert [a["user_id"] for a in batch["assignments"]] == ["vip", "a", "b"]
    assert batch["assignments"][0]["variant"] == forced
    assert ab.delete("/api/experiments/model_v2_test/overrides/vip").status_code == 204
    assert (
        ab.get("/api/route", params={"user_id": "vip", "experiment": "model_v2_test"}).json()["variant"]
        == natural
    )
    ab.post("/api/experiments/model_v2_test/pause")
    paused = ab.get("/api/route", params={"user_id": "a", "experiment": "model_v2_test"}).json()
    assert (
        paused["variant"] == "control" and not paused["in_experiment"] and paused["reason"] == "not_running"
    )
    missing = ab.get("/api/route", params={"user_id": "a", "experiment": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "EXPERIMENT_NOT_FOUND"
    assert ab.get("/api/route", params={"experiment": "model_v2_test"}).status_code == 422


def test_exposures_are_written_in_batches_once_per_user(ab: TestClient) -> None:
    create(ab)
    for _ in range(3):
        for i in range(50):
            ab.get("/api/route", params={"user_id": f"u{i}", "experiment": "model_v2_test"})
    exposures = ab.app.state.exposures  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and exposures._pending:
        time.sleep(0.02)
    exposures.flush()
    from ab_testing.routing import exposure_counts

    with ab.app.state.db.session(write=False) as session:  # type: ignore[attr-defined]
        from ab_testing.experiments import get_experiment

        exp = get_experiment(session, "model_v2_test")
        counts = exposure_counts(session, exp.id, 1)
    assert sum(counts.values()) == 50 and set(counts) == {"control", "treatment"}


def test_exposures_from_local_evaluation_are_counted_once(ab: TestClient) -> None:
    create(ab)
    users = [f"local{i}" for i in range(30)]
    body = {"exposures": [{"experiment": "model_v2_test", "user_id": u} for u in users + users[:10]]}
    answer = ab.post("/api/exposures", json=body)
    assert answer.status_code == 202 and answer.json() == {"accepted": 40, "ignored": 0}
    ab.app.state.exposures.flush()  # type: ignore[attr-defined]
    from ab_testing.experiments import get_experiment
    from ab_testing.routing import exposure_counts

    with ab.app.state.db.session(write=False) as session:  # type: ignore[attr-defined]
        counts = exposure_counts(session, get_experiment(session, "model_v2_test").id, 1)
    assert sum(counts.values()) == 30
    missing = ab.post("/api/exposures", json={"exposures": [{"experiment": "nope", "user_id": "u"}]})
    assert missing.status_code == 404


def test_the_fast_path_answers_like_the_regular_route(ab: TestClient) -> None:
    """Cached definition: the fast path answers; a cold cache or a malformed query goes through the
    regular route (same answer, same errors)."""
    create(ab)
    ab.app.state.definitions._items.clear()  # type: ignore[attr-defined]
    cold = ab.get(
        "/api/route", params={"user_id": "u42", "experiment": "model_v2_test"}
    )  # regular, fills the cache
    warm = ab.get("/api/route", params={"user_id": "u42", "experiment": "model_v2_test"})  # fast path
    assert cold.status_code == warm.status_code == 200 and cold.json() == warm.json()
    assert warm.headers["content-type"] == "application/json" and warm.headers.get("x-request-id")
    doubled = ab.get("/api/route?user_id=a&user_id=b&experiment=model_v2_test")
    assert doubled.status_code == 200 and doubled.json()["user_id"] in ("a", "b")
    assert ab.get("/api/route", params={"user_id": "", "experiment": "model_v2_test"}).status_code == 422
    assert (
        ab.get("/api/route", params={"user_id": "x" * 300, "experiment": "model_v2_test"}).status_code == 422
    )
    metrics = ab.get("/metrics").text
    assert (
        'mlops_http_requests_total{method="GET",route="/api/route",service="ab_testing",status="200"}'
        in metrics
    )
    assert 'route="unmatched"' not in metrics
