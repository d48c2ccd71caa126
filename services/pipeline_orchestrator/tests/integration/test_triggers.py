"""Schedules (catch-up off and on), backfill, max active runs, webhooks, AlertManager, worker API."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, sh_task, start, wait_run, wait_until
from pipeline_orchestrator.tables import Schedule
from sqlalchemy import update


def _rewind(api: TestClient, schedule_id: str, hours: float) -> None:
    """Pretend the orchestrator was away: the schedule's next fire time is ``hours`` before the
    last full hour (a fire time of an hourly cron)."""
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    with api.app.state.db.writer.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(Schedule).where(Schedule.id == schedule_id).values(next_run_at=when))
    api.app.state.engine.wake()  # type: ignore[attr-defined]


def _runs(api: TestClient, **params: str) -> list[dict]:
    return api.get("/api/runs", params={"limit": 1000, **params}).json()["items"]


def test_schedules_validate_and_fire_once_without_catchup(api: TestClient) -> None:
    define(api, "nightly", [sh_task("a")], parameters={"n": {"type": "int", "default": 1}})
    bad = [
        ({"cron": "0 25 * * *"}, "INVALID_CRON"),
        ({"cron": "0 3 * * *", "timezone": "Moon/Base"}, "INVALID_TIMEZONE"),
        ({"cron": "0 3 * * *", "parameters": {"m": 1}}, "UNKNOWN_PARAMETER"),
    ]
    for body, code in bad:
        response = api.post("/api/pipelines/nightly/schedules", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == code
    created = api.post(
        "/api/pipelines/nightly/schedules",
        json={"cron": "0 * * * *", "timezone": "Europe/Paris", "parameters": {"n": 7}},
    )
    assert created.status_code == 201
    schedule = created.json()
    assert datetime.fromisoformat(schedule["next_run_at"]) > datetime.now(UTC)
    assert not schedule["catchup"] and schedule["pipeline"] == "nightly"
    _rewind(api, schedule["id"], 5.5)  # six hourly fire times were missed
    runs = wait_until(lambda: _runs(api, trigger="schedule"), 10, "the scheduled run")
    wait_run(api, runs[0]["id"])
    runs = _runs(api, trigger="schedule")
    assert len(runs) == 1, "catch-up is off: only the latest missed fire time runs"
    assert runs[0]["parameters"] == {"n": 7} and runs[0]["logical_date"].endswith(":00:00+00:00")
    after = api.get(f"/api/schedules/{schedule['id']}").json()
    assert datetime.fromisoformat(after["next_run_at"]) > datetime.now(UTC)
    assert after["last_run_at"] == runs[0]["logical_date"]
    paused = api.patch(f"/api/schedules/{schedule['id']}", json={"enabled": False}).json()
    assert paused["enabled"] is False
    assert api.get("/api/schedules", params={"pipeline": "nightly"}).json()["total"] == 1
    assert api.delete(f"/api/schedules/{schedule['id']}").status_code == 204
    assert api.get(f"/api/schedules/{schedule['id']}").status_code == 404


def test_catchup_runs_every_missed_interval(api: TestClient) -> None:
    define(api, "hourly", [sh_task("a")], max_active_runs=10)
    schedule = api.post("/api/pipelines/hourly/schedules", json={"cron": "0 * * * *", "catchup": True}).json()
    _rewind(api, schedule["id"], 3)
    wait_until(lambda: len(_runs(api, trigger="schedule")) == 4, 10, "four catch-up runs")
    runs = _runs(api, trigger="schedule")
    dates = sorted(datetime.fromisoformat(r["logical_date"]) for r in runs)
    assert all((b - a) == timedelta(hours=1) for a, b in itertools.pairwise(dates))
    for run in runs:
        wait_run(api, run["id"])
    # fired again: nothing is duplicated
    api.app.state.engine.tick()  # type: ignore[attr-defined]
    assert len(_runs(api, trigger="schedule")) == 4


def test_backfill_creates_a_run_per_fire_time_within_max_active_runs(api: TestClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    define(api, "daily", [py("w", "wait_for", inputs={"path": str(gate)}, cache=False)], max_active_runs=1)
    response = api.post(
        "/api/pipelines/daily/backfill",
        json={"start": "2026-01-01T00:00:00", "end": "2026-01-04T00:00:00", "cron": "0 0 * * *"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 4
    assert [r["logical_date"][:10] for r in body["runs"]] == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
        "2026-01-04",
    ]
    assert all(r["trigger"] == "backfill" for r in body["runs"])
    wait_until(lambda: len(_runs(api, state="running")) == 1, 10, "one running run")
    assert len(_runs(api, state="queued")) == 3  # max_active_runs=1 holds the rest
    gate.write_text("go")
    for run in body["runs"]:
        assert wait_run(api, run["id"])["state"] == "succeeded"
    too_big = api.post(
        "/api/pipelines/daily/backfill",
        json={"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z", "cron": "0 * * * *"},
    )
    assert too_big.status_code == 422 and too_big.json()["error"]["code"] == "BACKFILL_TOO_LARGE"
    no_cron = api.post(
        "/api/pipelines/daily/backfill", json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}
    )
    assert no_cron.status_code == 422 and no_cron.json()["error"]["code"] == "CRON_REQUIRED"
    backwards = api.post(
        "/api/pipelines/daily/backfill",
        json={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "cron": "0 0 * * *"},
    )
    assert backwards.status_code == 422


def test_webhooks_start_runs_with_parameters(api: TestClient) -> None:
    define(
        api, "hooked", [sh_task("a", command="echo {{ params.who }}")], parameters={"who": {"type": "string"}}
    )
    hook = api.post("/api/pipelines/hooked/webhooks", json={"parameters": {"who": "default"}})
    assert hook.status_code == 201
    token = hook.json()["token"]
    assert hook.json()["url"] == f"/api/triggers/webhooks/{token}"
    fired = api.post(f"/api/triggers/webhooks/{token}", json={"parameters": {"who": "ci"}})
    assert fired.status_code == 201 and fired.json()["trigger"] == "webhook"
    assert fired.json()["parameters"] == {"who": "ci"}
    plain = api.post(f"/api/triggers/webhooks/{token}")
    assert plain.status_code == 201 and plain.json()["parameters"] == {"who": "default"}
    assert api.post("/api/triggers/webhooks/not-a-token", json={}).status_code == 404
    typed = api.post(f"/api/triggers/webhooks/{token}", json={"parameters": {"who": 5}})
    assert typed.status_code == 422
    listed = api.get("/api/pipelines/hooked/webhooks").json()["items"]
    assert len(listed) == 1 and "token" not in listed[0]  # shown once, stored hashed
    assert api.delete(f"/api/webhooks/{listed[0]['id']}").status_code == 204
    assert api.post(f"/api/triggers/webhooks/{token}", json={}).status_code == 404


def _alert(name: str, status: str = "firing", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": "drift"},
        "fingerprint": "f1",
    }


def test_alertmanager_starts_the_mapped_pipeline_once(api: TestClient, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    define(
        api,
        "retrain",
        [py("w", "wait_for", inputs={"path": str(gate)}, cache=False)],
        parameters={"reason": {"type": "string", "default": "manual"}},
    )
    route = api.post(
        "/api/triggers/alert-routes",
        json={
            "alertname": "ModelDrift",
            "pipeline": "retrain",
            "match": {"model": "churn"},
            "parameters": {"reason": "drift on {{ alert.labels.model }}"},
            "cooldown_seconds": 0,
        },
    )
    assert route.status_code == 201
    bad_route = api.post(
        "/api/triggers/alert-routes",
        json={"alertname": "X", "pipeline": "retrain", "parameters": {"nope": 1}},
    )
    assert bad_route.status_code == 422
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "pipeline-orchestrator-retrain",
        "groupLabels": {"alertname": "ModelDrift"},
        "alerts": [
            _alert("ModelDrift", model="churn"),
            _alert("ModelDrift", model="fraud"),  # not matched by the route
            _alert("ModelDrift", status="resolved", model="churn"),
            _alert("Unrelated"),
        ],
    }
    answer = api.post("/api/triggers/alertmanager", json=payload)
    assert answer.status_code == 200, answer.text
    started = answer.json()["started"]
    assert len(started) == 1 and started[0]["pipeline"] == "retrain"
    assert len(answer.json()["skipped"]) == 3
    run = api.get(f"/api/runs/{started[0]['run_id']}").json()
    assert run["trigger"] == "alertmanager" and run["parameters"] == {"reason": "drift on churn"}
    assert run["trigger_info"]["labels"]["model"] == "churn"
    # AlertManager repeats itself: no second run while the first is active
    again = api.post("/api/triggers/alertmanager", json=payload).json()
    assert again["started"] == [] and "still active" in again["skipped"][0]["reason"]
    gate.write_text("go")
    wait_run(api, started[0]["run_id"])
    # an alert naming its pipeline in a label needs no route
    labelled = api.post(
        "/api/triggers/alertmanager", json={"alerts": [_alert("PerfDrop", pipeline="retrain")]}
    ).json()
    assert len(labelled["started"]) == 1
    wait_run(api, labelled["started"][0]["run_id"])
    assert api.post("/api/triggers/alertmanager", json={"alerts": "nope"}).status_code == 422


def test_worker_api_refuses_wrong_tokens_and_stale_attempts(api: TestClient, tmp_path: Path) -> None:
    define(api, "w", [py("a", "noop", cache=False)])
    run = wait_run(api, start(api, "w"))
    attempt = run["tasks"][0]["attempts"][0]
    # local attempts have no token: no remote worker may report on them
    forged = api.post(
        f"/api/workers/attempts/{attempt['id']}/finished", json={"ok": True}, headers={"X-Attempt-Token": "x"}
    )
    assert forged.status_code == 403
    missing = api.post("/api/workers/attempts/nope/heartbeat", json={}, headers={"X-Attempt-Token": "x"})
    assert missing.status_code == 404
    assert api.post(f"/api/workers/attempts/{attempt['id']}/heartbeat", json={}).status_code == 422
