"""Read-modify-writes under real concurrency, on SQLite and PostgreSQL: many clients at once
against one orchestrator, and two orchestrators (two engines) on one database."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mlops_kit.testing import ServiceProcess
from orchestrator_helpers import wait_until
from pipeline_orchestrator.tables import Schedule
from sqlalchemy import create_engine, update

BACKENDS = ["sqlite", "postgres"]
FINISHED = ("succeeded", "failed", "cancelled")


@contextmanager
def _orchestrators(backend: str, tmp: Path, count: int) -> Iterator[tuple[list[str], str]]:
    """`count` orchestrator processes on one database; yields their URLs and the database URL."""
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {
        "MLOPS_DATA_DIR": str(tmp / "data"),
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "3",
        "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.05",
        "PYTHONPATH": os.pathsep.join([tests_dir, os.environ.get("PYTHONPATH", "")]),
    }
    with ExitStack() as stack:
        if backend == "sqlite":
            db_url = f"sqlite:///{tmp / 'data' / 'pipeline_orchestrator' / 'metadata.db'}"
        else:
            from mlops_kit.testing import fresh_postgres_database

            db_url = stack.enter_context(fresh_postgres_database("orchraces"))
            env["MLOPS_DATABASE_URL"] = db_url
        urls = [stack.enter_context(ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp)).url]
        urls += [
            stack.enter_context(ServiceProcess("pipeline_orchestrator", env=env, tmp=tmp)).url
            for _ in range(count - 1)
        ]
        yield urls, db_url


def _at_once(
    count: int, work: Callable[[httpx.Client, int], httpx.Response], url: str
) -> list[httpx.Response]:
    """`work(client, i)` in `count` threads released together; the answers in order of i."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response | BaseException | None] = [None] * count

    def run(i: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                barrier.wait(timeout=30)
                answers[i] = work(client, i)
        except BaseException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for answer in answers:
        if not isinstance(answer, httpx.Response):
            raise AssertionError(f"a client failed: {answer!r}")
    return answers  # type: ignore[return-value]


def _definition(name: str, i: int) -> dict:
    task = {"name": "t", "kind": "python", "callable": "orchestrator_engine_fixtures:noop", "cache": False}
    return {"name": name, "description": f"edit {i}", "tasks": [task | {"inputs": {"edit": i}}]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_new_versions_of_one_pipeline_are_all_kept(backend: str, tmp_path: Path) -> None:
    with _orchestrators(backend, tmp_path, 1) as (urls, _):
        # ten creates of a pipeline that does not exist yet, then ten new versions of it
        for offset in (0, 10):

            def create(client: httpx.Client, i: int, offset: int = offset) -> httpx.Response:
                return client.post("/api/pipelines", json=_definition("p", offset + i))

            answers = _at_once(10, create, urls[0])
            assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
            assert sorted(a.json()["version"] for a in answers) == list(range(offset + 1, offset + 11))
        versions = httpx.get(f"{urls[0]}/api/pipelines/p/versions", params={"limit": 100}).json()["items"]
        assert sorted(v["version"] for v in versions) == list(range(1, 21))
        # each version holds the definition that was posted for it
        assert len({str(v["definition"]["tasks"][0]["inputs"]) for v in versions}) == 20
        assert httpx.get(f"{urls[0]}/api/pipelines/p").json()["version"] == 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_engines_run_each_task_once_and_respect_max_active_runs(backend: str, tmp_path: Path) -> None:
    names = ("a", "b", "c", "d", "e", "f")
    markers = {name: tmp_path / f"{name}.txt" for name in names}

    def record(name: str) -> dict:
        return {
            "name": name,
            "kind": "python",
            "callable": "orchestrator_engine_fixtures:record",
            "inputs": {"marker": str(markers[name])},
            "cache": False,
        }

    # many runs of independent tasks: every pass of both engines has much to decide at once
    definition = {"name": "shared", "max_active_runs": 4, "tasks": [record(name) for name in names]}
    runs = 24
    with _orchestrators(backend, tmp_path, 2) as (urls, _):
        assert httpx.post(f"{urls[0]}/api/pipelines", json=definition).status_code == 201
        answers = _at_once(
            runs,
            # the clients' own 60 s, not httpx.post's 5 s: 24 run creations at once on one SQLite
            # file behind two busy engines wait their turn for the single writer
            lambda client, i: httpx.post(f"{urls[i % 2]}/api/pipelines/shared/runs", json={}, timeout=60),
            urls[0],
        )
        assert [a.status_code for a in answers] == [201] * runs
        ids = [a.json()["id"] for a in answers]

        def finished() -> list[dict]:
            found = [httpx.get(f"{urls[0]}/api/runs/{i}").json() for i in ids]
            return found if all(r["state"] in FINISHED for r in found) else []

        done = wait_until(finished, 120, "every run to finish")
        assert [r["state"] for r in done] == ["succeeded"] * runs
        for name, marker in markers.items():
            assert len(marker.read_text().splitlines()) == runs, name  # once per run, never twice
        for run in done:
            assert all(len(t["attempts"]) == 1 for t in run["tasks"]), run
        _assert_at_most_running(done, 4)


def _assert_at_most_running(runs: list[dict], limit: int) -> None:
    events = sorted(
        [(r["started_at"], 1) for r in runs] + [(r["finished_at"], -1) for r in runs],
        key=lambda e: (e[0], e[1]),  # a run that finishes as another starts leaves room for it
    )
    running = 0
    for _, step in events:
        running += step
        assert running <= limit, events


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_engines_fire_each_schedule_tick_once(backend: str, tmp_path: Path) -> None:
    definition = {
        "name": "ticking",
        "tasks": [{"name": "t", "kind": "python", "callable": "orchestrator_engine_fixtures:noop"}],
    }
    with _orchestrators(backend, tmp_path, 2) as (urls, db_url):
        assert httpx.post(f"{urls[0]}/api/pipelines", json=definition).status_code == 201
        body = {"cron": "* * * * *", "catchup": True, "enabled": False}
        schedule = httpx.post(f"{urls[0]}/api/pipelines/ticking/schedules", json=body).json()
        # five missed minutes, due for both engines at once
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
        engine = create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(
                update(Schedule).where(Schedule.id == schedule["id"]).values(next_run_at=start, enabled=True)
            )
        engine.dispose()

        def schedule_runs() -> list[dict]:
            items = httpx.get(f"{urls[1]}/api/runs", params={"limit": 100}).json()["items"]
            found = [r for r in items if r["trigger"] == "schedule"]
            return found if len(found) >= 5 and all(r["state"] in FINISHED for r in found) else []

        found = wait_until(schedule_runs, 60, "the missed ticks to run")
        ticks = Counter(r["logical_date"] for r in found)
        assert set(ticks.values()) == {1}, ticks
        expected = {(start + timedelta(minutes=m)).isoformat() for m in range(5)}
        assert expected <= {_iso(t) for t in ticks}
    # nor did an engine's pass fail on the other's runs (a duplicate tick rolls a whole pass back)
    logs = "".join(path.read_text() for path in tmp_path.glob("pipeline_orchestrator-*.log"))
    assert "scheduling pass failed" not in logs


def _iso(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat()


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_alerts_start_one_run_per_cool_down(backend: str, tmp_path: Path) -> None:
    definition = {
        "name": "retrain",
        "tasks": [{"name": "t", "kind": "python", "callable": "orchestrator_engine_fixtures:noop"}],
    }
    with _orchestrators(backend, tmp_path, 1) as (urls, _):
        assert httpx.post(f"{urls[0]}/api/pipelines", json=definition).status_code == 201
        route = {"alertname": "ModelDrift", "pipeline": "retrain", "cooldown_seconds": 3600}
        assert httpx.post(f"{urls[0]}/api/triggers/alert-routes", json=route).status_code == 201

        def alert(client: httpx.Client, i: int) -> httpx.Response:
            labels = {"alertname": "ModelDrift", "model": f"m{i}"}
            return client.post("/api/triggers/alertmanager", json={"alerts": [{"labels": labels}]})

        answers = _at_once(10, alert, urls[0])
        assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
        assert sum(len(a.json()["started"]) for a in answers) == 1
        items = httpx.get(f"{urls[0]}/api/runs", params={"limit": 100}).json()["items"]
        assert len([r for r in items if r["trigger"] == "alertmanager"]) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_retries_of_a_failed_run_retry_it_once(backend: str, tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.write_text("until the retry")
    task = {
        "name": "t",
        "kind": "python",
        "callable": "orchestrator_engine_fixtures:fail_if_exists",
        "inputs": {"flag": str(flag)},
        "cache": False,
    }
    definition = {"name": "flaky", "tasks": [task]}
    with _orchestrators(backend, tmp_path, 1) as (urls, _):
        assert httpx.post(f"{urls[0]}/api/pipelines", json=definition).status_code == 201
        run_id = httpx.post(f"{urls[0]}/api/pipelines/flaky/runs", json={}).json()["id"]
        run_url = f"{urls[0]}/api/runs/{run_id}"
        wait_until(lambda: httpx.get(run_url).json()["state"] == "failed", 60, "the run to fail")
        flag.unlink()  # the retried run succeeds: no later retry is legitimate
        answers = _at_once(30, lambda client, i: client.post(f"/api/runs/{run_id}/retry"), urls[0])
        assert sorted(a.status_code for a in answers) == [202] + [409] * 29, [a.text for a in answers]
        assert httpx.get(run_url).json()["trigger_info"]["retries"] == 1
