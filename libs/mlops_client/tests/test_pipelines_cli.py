from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--pipelines-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def _definition(tmp_path: Path, name: str, *tasks: dict[str, Any], **fields: Any) -> Path:
    file = tmp_path / f"{name}.json"
    file.write_text(json.dumps({"name": name, "tasks": list(tasks), **fields}))
    return file


def _shell(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "shell", "command": command, "cache": False, **fields}


def test_create_run_wait_and_inspect(orchestrator_url: str, unique: str, tmp_path: Path) -> None:
    file = _definition(
        tmp_path,
        unique,
        _shell("greet", "echo hi {{ params.who }}"),
        _shell("count", "echo {{ params.n }}", depends_on=["greet"]),
        parameters={"who": {"type": "string", "default": "x"}, "n": {"type": "int", "default": 0}},
    )
    code, out, err = _run(orchestrator_url, "pipelines", "create", str(file))
    assert code == 0 and f"created pipeline {unique}: version 1" in out, err
    code, out, _ = _run(orchestrator_url, "pipelines", "create", str(file))
    assert code == 0 and "unchanged: version 1" in out
    code, out, _ = _run(orchestrator_url, "pipelines", "list", "--prefix", unique)
    assert code == 0 and unique in out
    code, out, _ = _run(orchestrator_url, "pipelines", "show", unique)
    assert code == 0 and "greet" in out and "count" in out and "who" in out

    code, out, err = _run(
        orchestrator_url,
        "pipelines",
        "run",
        unique,
        "-p",
        "who=ana",
        "-p",
        "n=3",
        "--wait",
        "--poll",
        "0.1",
        "--json",
    )
    assert code == 0, err
    run = json.loads(out)
    assert run["state"] == "succeeded" and run["parameters"] == {"who": "ana", "n": 3}
    assert run["progress"]["done"] == run["progress"]["total"] == 2
    assert f"{unique} run {run['id'][:8]}" in err and "2/2" in err, "the progress bar goes to stderr"

    code, out, _ = _run(orchestrator_url, "pipelines", "logs", run["id"], "greet")
    assert code == 0 and "\nhi ana\n" in out
    # the short id the progress bar shows is enough
    code, out, err = _run(orchestrator_url, "pipelines", "logs", run["id"][:8], "greet")
    assert code == 0 and "\nhi ana\n" in out, err
    code, out, _ = _run(orchestrator_url, "pipelines", "logs", run["id"][:8], "count", "--follow")
    assert code == 0 and "\n3\n" in out and "succeeded" in out.splitlines()[-1]
    code, out, _ = _run(orchestrator_url, "pipelines", "status", run["id"])
    assert code == 0 and "succeeded" in out and "greet" in out and "2/2 tasks" in out
    code, out, _ = _run(
        orchestrator_url, "pipelines", "runs", "--pipeline", unique, "--state", "succeeded", "--json"
    )
    assert code == 0 and [r["id"] for r in json.loads(out)] == [run["id"]]


def test_a_failed_run_exits_non_zero_and_can_be_retried(
    orchestrator_url: str, unique: str, tmp_path: Path
) -> None:
    marker = tmp_path / "seen"
    file = _definition(
        tmp_path,
        unique,
        _shell("flaky", f"test -f {marker} || {{ touch {marker}; echo broken >&2; exit 4; }}"),
    )
    assert _run(orchestrator_url, "pipelines", "create", str(file))[0] == 0
    code, out, err = _run(orchestrator_url, "pipelines", "run", unique, "--wait", "--poll", "0.1")
    assert code == 1, out
    assert "failed" in out and "flaky" in err, "the failed task is named"
    run_id = out.split()[1]
    code, out, _ = _run(orchestrator_url, "pipelines", "status", run_id, "--json")
    assert json.loads(out)["tasks"][0]["attempts"][0]["exit_status"] == 4
    code, out, err = _run(orchestrator_url, "pipelines", "retry", run_id, "--wait", "--poll", "0.1", "--json")
    assert code == 0 and json.loads(out)["state"] == "succeeded", err


def test_schedule_and_backfill(orchestrator_url: str, unique: str, tmp_path: Path) -> None:
    file = _definition(tmp_path, unique, _shell("day", "echo {{ run.logical_date }}"))
    assert _run(orchestrator_url, "pipelines", "create", str(file))[0] == 0
    code, out, err = _run(
        orchestrator_url,
        "pipelines",
        "schedule",
        unique,
        "--cron",
        "0 0 * * *",
        "--timezone",
        "UTC",
        "--json",
    )
    assert code == 0, err
    schedule = json.loads(out)
    assert (schedule["cron"], schedule["timezone"]) == ("0 0 * * *", "UTC")
    code, out, _ = _run(orchestrator_url, "pipelines", "schedules", "--pipeline", unique)
    assert code == 0 and schedule["id"] in out
    code, out, err = _run(
        orchestrator_url,
        "pipelines",
        "backfill",
        unique,
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-02T00:00:00Z",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["count"] == 2 and {r["trigger"] for r in result["runs"]} == {"backfill"}
    code, out, _ = _run(orchestrator_url, "pipelines", "unschedule", schedule["id"])
    assert code == 0


def test_errors_exit_non_zero_with_the_message(orchestrator_url: str, unique: str, tmp_path: Path) -> None:
    code, _, err = _run(orchestrator_url, "pipelines", "run", unique)
    assert code == 1 and "NOT_FOUND" in err
    bad = _definition(tmp_path, unique, _shell("a", "true", depends_on=["missing"]))
    code, _, err = _run(orchestrator_url, "pipelines", "create", str(bad))
    assert code == 1 and "UNKNOWN_DEPENDENCY" in err
    good = _definition(
        tmp_path, unique, _shell("a", "true"), parameters=[{"name": "n", "type": "int", "default": 1}]
    )
    assert _run(orchestrator_url, "pipelines", "create", str(good))[0] == 0
    code, _, err = _run(orchestrator_url, "pipelines", "run", unique, "-p", "n=lots")
    assert code == 1 and "PARAMETER_TYPE_ERROR" in err
    code, _, err = _run(orchestrator_url, "pipelines", "run", unique, "-p", "oops")
    assert code == 2 and "key=value" in err
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("name: x\n")
    code, _, err = _run(orchestrator_url, "pipelines", "create", str(yaml_file))
    assert code == 2 and "JSON" in err


def test_logs_print_the_whole_log(orchestrator_url: str, unique: str, tmp_path: Path) -> None:
    file = _definition(tmp_path, unique, _shell("loud", "yes ünïcode | head -n 200000"))  # > 1 MiB
    assert _run(orchestrator_url, "pipelines", "create", str(file))[0] == 0
    code, out, err = _run(orchestrator_url, "pipelines", "run", unique, "--wait", "--poll", "0.1", "--json")
    assert code == 0, err
    code, out, _ = _run(orchestrator_url, "pipelines", "logs", json.loads(out)["id"], "loud")
    assert code == 0 and out.count("ünïcode\n") == 200000 and "\ufffd" not in out


def test_cancel_and_a_wait_that_times_out(orchestrator_url: str, unique: str, tmp_path: Path) -> None:
    file = _definition(tmp_path, unique, _shell("sleepy", "sleep 30"))
    assert _run(orchestrator_url, "pipelines", "create", str(file))[0] == 0
    code, out, _ = _run(orchestrator_url, "pipelines", "run", unique, "--json")
    assert code == 0
    run_id = json.loads(out)["id"]
    code, out, err = _run(orchestrator_url, "pipelines", "cancel", run_id)
    assert code == 0 and run_id in out, err
    code, out, err = _run(
        orchestrator_url, "pipelines", "run", unique, "--wait", "--timeout", "0.3", "--poll", "0.1"
    )
    assert code == 1 and "still" in err, "a run still going after --timeout exits 1"
    code, out, _ = _run(orchestrator_url, "pipelines", "runs", "--pipeline", unique, "--json")
    for run in json.loads(out):
        if run["state"] not in ("cancelled", "cancelling"):
            _run(orchestrator_url, "pipelines", "cancel", run["id"])


def test_backfill_of_a_week_of_days_includes_the_last_day(
    orchestrator_url: str, unique: str, tmp_path: Path
) -> None:
    file = _definition(
        tmp_path,
        unique,
        _shell("day", "echo {{ params.ds }}"),
        parameters={"ds": {"type": "string", "default": "today"}},
    )
    assert _run(orchestrator_url, "pipelines", "create", str(file))[0] == 0
    code, out, err = _run(
        orchestrator_url,
        "pipelines",
        "backfill",
        unique,
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-07",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Paris",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    days = sorted(r["parameters"]["ds"] for r in result["runs"])
    assert result["count"] == 7 and days == [f"2026-11-0{d}" for d in range(1, 8)]
