"""Backfill of bare dates includes the end day and hands each run its logical date; a run id's
first characters find the run (an ambiguous prefix is a 409)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from orchestrator_helpers import define, sh_task, start, wait_run, wait_until
from pipeline_orchestrator.tables import Run, Schedule
from sqlalchemy import update
from sqlalchemy.orm import Session

DAY_PARAMS = {
    "ds": {"type": "string", "default": "today"},
    "logical_date": {"type": "string", "default": "now"},
    "day": {"type": "string", "default": "today"},
}


def _backfill(api: TestClient, body: dict) -> dict:
    response = api.post("/api/pipelines/daily/backfill", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_backfill_of_nov_1_to_7_makes_seven_runs_each_with_its_date(api: TestClient) -> None:
    define(api, "daily", [sh_task("a", command="echo {{ params.ds }}")], parameters=DAY_PARAMS)
    result = _backfill(
        api, {"start": "2026-11-01", "end": "2026-11-07", "cron": "0 3 * * *", "timezone": "Europe/Paris"}
    )
    runs = sorted(result["runs"], key=lambda r: r["logical_date"])
    assert result["count"] == len(runs) == 7, [r["logical_date"] for r in runs]
    days = [f"2026-11-0{d}" for d in range(1, 8)]
    assert [r["parameters"]["ds"] for r in runs] == days
    assert [r["logical_date"] for r in runs] == [f"{d}T02:00:00+00:00" for d in days]  # 03:00 Paris
    assert all(r["parameters"]["logical_date"] == r["logical_date"] for r in runs)
    assert {r["parameters"]["day"] for r in runs} == {"today"}, "only ds and logical_date are filled"
    # midnight runs: the end day's own midnight is inside the range; given parameters win
    midnight = _backfill(
        api,
        {"start": "2026-11-01", "end": "2026-11-07", "cron": "0 0 * * *", "parameters": {"ds": "fixed"}},
    )
    assert midnight["count"] == 7 and {r["parameters"]["ds"] for r in midnight["runs"]} == {"fixed"}
    # a time stays exact: the end is included, nothing after it
    exact = _backfill(
        api, {"start": "2026-11-01T00:00:00Z", "end": "2026-11-03T00:00:00Z", "cron": "0 0 * * *"}
    )
    assert exact["count"] == 3
    log = api.get(f"/api/runs/{wait_run(api, runs[2]['id'])['id']}/tasks/a/logs")
    assert log.status_code == 200 and "2026-11-03" in log.text


def test_a_scheduled_run_gets_its_day_in_the_schedules_timezone(api: TestClient) -> None:
    define(api, "daily", [sh_task("a")], parameters=DAY_PARAMS)
    created = api.post("/api/pipelines/daily/schedules", json={"cron": "0 * * * *", "timezone": "Asia/Tokyo"})
    assert created.status_code == 201, created.text
    fire = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    with api.app.state.db.writer.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(Schedule).where(Schedule.id == created.json()["id"]).values(next_run_at=fire))
    api.app.state.engine.wake()  # type: ignore[attr-defined]
    runs = wait_until(
        lambda: api.get("/api/runs", params={"trigger": "schedule"}).json()["items"], 10, "the scheduled run"
    )
    logical = datetime.fromisoformat(runs[0]["logical_date"])
    assert runs[0]["parameters"]["ds"] == logical.astimezone(ZoneInfo("Asia/Tokyo")).date().isoformat()
    assert runs[0]["parameters"]["logical_date"] == runs[0]["logical_date"]
    wait_run(api, runs[0]["id"])


def test_a_run_id_prefix_finds_the_run_and_an_ambiguous_one_is_a_409(api: TestClient) -> None:
    define(api, "short", [sh_task("a", command="echo hello")])
    run = wait_run(api, start(api, "short"))
    short = run["id"][:8]
    assert api.get(f"/api/runs/{short}").json()["id"] == run["id"]
    log = api.get(f"/api/runs/{short}/tasks/a/logs")
    assert log.status_code == 200 and "hello" in log.text
    with Session(api.app.state.db.writer) as session:  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        for n in (1, 2):
            session.add(
                Run(
                    id=f"abcd1234-0000-4000-8000-00000000000{n}",
                    pipeline_id=run["pipeline_id"],
                    pipeline_name="short",
                    pipeline_version=1,
                    state="succeeded",
                    parameters={},
                    trigger="manual",
                    trigger_info={},
                    created_at=now,
                )
            )
        session.commit()
    ambiguous = api.get("/api/runs/abcd1234/tasks/a/logs")
    assert ambiguous.status_code == 409 and ambiguous.json()["error"]["code"] == "AMBIGUOUS_RUN_ID"
    assert "abcd1234-0000-4000-8000-000000000001" in ambiguous.json()["error"]["message"]
    assert api.get("/api/runs/abcd1234-0000-4000-8000-000000000002").status_code == 200
    assert api.get("/api/runs/abc").status_code == 404, "too short to be a prefix"
    assert api.get("/api/runs/abcd%25").status_code == 404, "no LIKE wildcards"
