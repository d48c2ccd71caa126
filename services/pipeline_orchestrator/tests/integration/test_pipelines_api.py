"""Defining pipelines over HTTP: versions, refusals that name the problem and create nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, sh_task


def test_create_version_and_idempotent_resubmission(api: TestClient) -> None:
    first = api.post("/api/pipelines", json={"name": "etl", "tasks": [sh_task("a")]})
    assert first.status_code == 201 and first.json()["version"] == 1 and first.json()["created"]
    again = api.post("/api/pipelines", json={"name": "etl", "tasks": [sh_task("a")]})
    assert again.status_code == 200 and again.json()["version"] == 1 and not again.json()["created"]
    changed = api.post("/api/pipelines", json={"name": "etl", "tasks": [sh_task("a"), sh_task("b", ["a"])]})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    assert changed.json()["id"] == first.json()["id"]
    versions = api.get("/api/pipelines/etl/versions").json()
    assert [v["version"] for v in versions["items"]] == [2, 1] and versions["total"] == 2
    v1 = api.get("/api/pipelines/etl/versions/1").json()
    assert [t["name"] for t in v1["definition"]["tasks"]] == ["a"]
    # a run records the version it ran, old versions stay runnable
    run = api.post("/api/pipelines/etl/runs", json={"version": 1}).json()
    assert run["pipeline_version"] == 1
    assert api.post("/api/pipelines/etl/runs", json={}).json()["pipeline_version"] == 2
    assert api.get(f"/api/pipelines/{first.json()['id']}").json()["name"] == "etl"
    listed = api.get("/api/pipelines", params={"name_prefix": "et"}).json()
    assert [p["name"] for p in listed["items"]] == ["etl"]


def test_invalid_definitions_are_422_naming_the_problem_and_create_nothing(api: TestClient) -> None:
    cases = [
        ({"tasks": [sh_task("a", ["b"]), sh_task("b", ["a"])]}, "CYCLE", "a -> b -> a"),
        ({"tasks": [sh_task("a", ["ghost"])]}, "UNKNOWN_DEPENDENCY", "ghost"),
        ({"tasks": [sh_task("a"), sh_task("a")]}, "DUPLICATE_TASK", "'a'"),
        (
            {"tasks": [{"name": "t", "kind": "shell", "command": "{{ params.x }}"}]},
            "UNKNOWN_PARAMETER",
            "'x'",
        ),
        (
            {"tasks": [{"name": "t", "kind": "shell", "command": "{{ tasks.u.outputs.k }}"}, sh_task("u")]},
            "REFERENCE_NOT_UPSTREAM",
            "'u'",
        ),
        ({"tasks": [{"name": "t", "kind": "python"}]}, "INVALID_PIPELINE", "callable"),
        ({"tasks": [{"name": "t", "kind": "teleport"}]}, "INVALID_PIPELINE", "tasks[0](t).kind"),
        ({"tasks": []}, "INVALID_PIPELINE", "tasks"),
        (
            {"tasks": [sh_task("a")], "parameters": {"n": {"type": "int", "default": "ten"}}},
            "PARAMETER_TYPE_ERROR",
            "'n'",
        ),
    ]
    for body, code, fragment in cases:
        response = api.post("/api/pipelines", json={"name": "bad", **body})
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (body, error)
        assert fragment in error["message"], (fragment, error["message"])
    assert api.get("/api/pipelines/bad").status_code == 404
    assert api.get("/api/pipelines").json()["total"] == 0
    assert (
        api.post(
            "/api/pipelines", content=b"[1, 2]", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    malformed = api.post("/api/pipelines", content=b"{nope", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "INVALID_JSON"


def test_run_parameters_are_checked_and_nothing_is_created_on_error(api: TestClient) -> None:
    define(
        api,
        "params",
        [sh_task("a", command="echo {{ params.n }}")],
        parameters=[{"name": "n", "type": "int"}, {"name": "mode", "type": "string", "default": "fast"}],
    )
    for parameters, code in [
        ({"n": 1, "speed": 2}, "UNKNOWN_PARAMETER"),
        ({"n": "one"}, "PARAMETER_TYPE_ERROR"),
        ({}, "MISSING_PARAMETER"),
    ]:
        response = api.post("/api/pipelines/params/runs", json={"parameters": parameters})
        assert response.status_code == 422 and response.json()["error"]["code"] == code, response.text
    assert api.get("/api/runs").json()["total"] == 0
    assert api.post("/api/pipelines/nope/runs", json={}).status_code == 404
    run = api.post("/api/pipelines/params/runs", json={"parameters": {"n": 5}}).json()
    assert run["parameters"] == {"n": 5, "mode": "fast"}


def test_delete_refuses_while_runs_are_active(api: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gate = tmp_path / "gate"
    define(api, "held", [py("w", "wait_for", inputs={"path": str(gate)})])
    run = api.post("/api/pipelines/held/runs", json={}).json()
    response = api.delete("/api/pipelines/held")
    assert response.status_code == 409 and response.json()["error"]["code"] == "PIPELINE_HAS_ACTIVE_RUNS"
    gate.write_text("go")
    from orchestrator_helpers import wait_run

    assert wait_run(api, run["id"])["state"] == "succeeded"
    assert api.delete("/api/pipelines/held").status_code == 204
    assert api.get("/api/pipelines/held").status_code == 404
    assert api.get(f"/api/runs/{run['id']}").status_code == 404
