"""Materialization jobs: offline → online in the background, with progress and a watermark."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from feature_store.offline import materialize
from feature_store.tables import FeatureSet, MaterializationJob
from mlops_kit.testing import wait_until
from sqlalchemy import select

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def users(client: TestClient) -> TestClient:
    assert client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}).status_code == 201
    body = {"name": "user_features", "entity": "user", "features": [{"name": "age", "type": "int"}]}
    assert client.post("/api/feature-sets", json=body).status_code == 201
    return client


def ingest(client: TestClient, rows: list[tuple[str, int, int]], created: int | None = None) -> None:
    body = [
        {"user_id": k, "event_timestamp": T0 + t, "age": a}
        | ({"created_timestamp": created} if created is not None else {})
        for k, t, a in rows
    ]
    r = client.post("/api/feature-sets/user_features/rows", json={"rows": body})
    assert r.status_code == 201, r.text


def wait(client: TestClient, job_id: int, timeout: float = 20.0) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/materialization-jobs/{job_id}").json()
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None

    return wait_until(finished, timeout=timeout, what=f"job {job_id}", interval=0.005, tolerate=())


def online(client: TestClient, keys: list[str]) -> list[tuple[int, int, dict] | None]:
    with client.app.state.db.reader.connect() as conn:
        fs_id = conn.scalar(select(FeatureSet.id).where(FeatureSet.name == "user_features"))
    return client.portal.call(client.app.state.online.read, [(fs_id, k) for k in keys])


def run(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/feature-sets/user_features/materialize", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("PENDING", "RUNNING", "SUCCEEDED")
    return wait(client, r.json()["id"])


def test_the_newest_row_of_each_entity_in_the_range_goes_online(users: TestClient) -> None:
    ingest(users, [("u1", 10, 1), ("u1", 20, 2), ("u1", 30, 3), ("u2", 5, 7)])
    ingest(users, [("u1", 20, 99)], created=int(time.time()) + 1000)  # same event time, created later: wins
    job = run(users, {"start": T0, "end": T0 + 25})
    assert job["status"] == "SUCCEEDED", job
    assert (job["rows_total"], job["rows_done"], job["percent"]) == (2, 2, 100.0)
    u1, u2, u3 = online(users, ["u1", "u2", "u3"])
    assert u1 is not None and u1[0] == (T0 + 20) * 1_000_000 and u1[2]["age"] == 99
    assert u2 is not None and u2[2]["age"] == 7
    assert u3 is None


def test_incremental_jobs_continue_from_the_watermark(users: TestClient) -> None:
    ingest(users, [("u1", 10, 1)])
    assert run(users, {"end": T0 + 15})["status"] == "SUCCEEDED"
    ingest(users, [("u1", 20, 2), ("u2", 17, 5), ("u3", 12, 6)])  # u3 arrives late, below the watermark
    job = run(users, {"incremental": True, "end": T0 + 100})
    assert job["status"] == "SUCCEEDED"
    assert job["start"] == "2026-01-01T00:00:15.000001Z" and job["rows_total"] == 3
    assert [r[2]["age"] if r else None for r in online(users, ["u1", "u2", "u3"])] == [2, 5, 6]
    job = run(users, {"incremental": True, "end": T0 + 100})
    assert job["rows_total"] == 0 and job["status"] == "SUCCEEDED"


def served_ages(client: TestClient, *users: str) -> list[Any]:
    params = {"entities": ",".join(users), "features": "user_features:age"}
    response = client.get("/api/features/serve", params=params)
    assert response.status_code == 200, response.text
    return [result["values"]["age"] for result in response.json()["results"]]


def test_incremental_jobs_copy_rows_ingested_since_whatever_their_event_time(users: TestClient) -> None:
    ingest(users, [("u1", 10, 1), ("u2", 50, 7)])
    assert run(users, {"end": T0 + 100})["status"] == "SUCCEEDED"
    assert served_ages(users, "u1", "u2") == [1, 7]
    # ingested after the job, event times before its watermark: u1's is newer than what is online
    # (it must be served), u2's is older (point in time: it must not replace the newer value)
    ingest(users, [("u1", 40, 2), ("u2", 30, 99)])
    job = run(users, {"incremental": True})
    assert job["status"] == "SUCCEEDED" and job["rows_total"] == 2
    assert served_ages(users, "u1", "u2") == [2, 7]
    u1 = online(users, ["u1"])[0]
    assert u1 is not None and u1[0] == (T0 + 40) * 1_000_000
    assert run(users, {"incremental": True})["rows_total"] == 0


def test_a_job_ending_before_the_watermark_keeps_late_rows_for_the_next_one(users: TestClient) -> None:
    ingest(users, [("u1", 10, 1)])
    assert run(users, {"end": T0 + 100})["status"] == "SUCCEEDED"
    ingest(users, [("u2", 90, 5), ("u3", 20, 6)])  # both late; u2's event time is after the next end
    assert run(users, {"incremental": True, "end": T0 + 50})["status"] == "SUCCEEDED"
    assert served_ages(users, "u2", "u3") == [None, 6]
    assert run(users, {"incremental": True, "end": T0 + 200})["status"] == "SUCCEEDED"
    assert served_ages(users, "u2", "u3") == [5, 6]


def test_many_entities_are_copied_in_chunks(users: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materialize, "CHUNK", 7)
    ingest(
        users,
        [(f"u{i:03d}", i % 13, i) for i in range(100)] + [(f"u{i:03d}", 50, -i) for i in range(0, 100, 3)],
    )
    job = run(users, {})
    assert (job["status"], job["rows_total"], job["rows_done"]) == ("SUCCEEDED", 100, 100)
    got = online(users, [f"u{i:03d}" for i in range(100)])
    assert [r[2]["age"] for r in got if r] == [-i if i % 3 == 0 else i for i in range(100)]


def test_jobs_are_listed_newest_first_and_filtered(users: TestClient) -> None:
    ingest(users, [("u1", 10, 1)])
    first, second = run(users, {}), run(users, {})
    page = users.get("/api/materialization-jobs", params={"feature_set": "user_features", "limit": 1}).json()
    assert [j["id"] for j in page["items"]] == [second["id"]]
    assert (page["total"], page["next_offset"]) == (2, 1)
    assert users.get("/api/materialization-jobs", params={"status": "FAILED"}).json()["total"] == 0
    assert first["id"] < second["id"]


def test_bad_requests_and_unknown_things_are_4xx(users: TestClient) -> None:
    r = users.post("/api/feature-sets/user_features/materialize", json={"start": T0 + 10, "end": T0})
    assert r.status_code == 400
    r = users.post("/api/feature-sets/user_features/materialize", json={"start": "soon"})
    assert r.status_code == 422
    assert users.post("/api/feature-sets/nope/materialize", json={}).status_code == 404
    assert users.get("/api/materialization-jobs/999").status_code == 404
    assert users.get("/api/materialization-jobs", params={"feature_set": "nope"}).status_code == 404


def test_jobs_left_running_by_a_stopped_process_are_marked_failed(users: TestClient) -> None:
    with users.app.state.db.writer.begin() as conn:
        fs_id = conn.scalar(select(FeatureSet.id))
        conn.execute(
            MaterializationJob.__table__.insert().values(feature_set_id=fs_id, end_us=0, status="RUNNING")
        )
    assert materialize.fail_interrupted_jobs(users.app.state.db) == 1
    job = users.get("/api/materialization-jobs").json()["items"][0]
    assert job["status"] == "FAILED" and "interrupted" in job["error"]
