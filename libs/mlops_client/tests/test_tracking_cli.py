from __future__ import annotations

import json
import os
from pathlib import Path

from mlops_client import TrackingClient
from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--tracking-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_experiments_create_list_get_and_delete(tracking_url: str, unique: str) -> None:
    code, out, _ = _run(tracking_url, "experiments", "create", unique, "--tag", "team=growth", "--json")
    assert code == 0, out
    created = json.loads(out)
    assert created["tags"] == {"team": "growth"}
    code, out, _ = _run(tracking_url, "experiments", "list", "--prefix", unique, "--json")
    assert [e["name"] for e in json.loads(out)] == [unique]
    code, out, _ = _run(tracking_url, "experiments", "get", created["id"], "--json")
    assert code == 0 and json.loads(out)["name"] == unique
    code, out, _ = _run(tracking_url, "experiments", "get", unique)
    assert code == 0 and unique in out and "team=growth" in out
    code, out, _ = _run(tracking_url, "experiments", "delete", unique)
    assert code == 0 and f"id {created['id']}" in out
    code, out, _ = _run(
        tracking_url, "experiments", "list", "--prefix", unique, "--view", "DELETED_ONLY", "--json"
    )
    assert [e["lifecycle_stage"] for e in json.loads(out)] == ["deleted"]


def test_log_metrics_and_params_then_list_get_and_search(
    tracking: TrackingClient, tracking_url: str, unique: str
) -> None:
    run = tracking.start_run(experiment=unique, run_name="cli-run")
    code, out, _ = _run(
        tracking_url, "runs", "log-metric", unique, run.id, "auc=0.91", "loss=nan", "--step", "2"
    )
    assert code == 0 and "logged 2 metric value(s)" in out
    code, out, _ = _run(tracking_url, "runs", "log-param", unique, run.id, "lr=1e-3", "model=rf")
    assert code == 0, out
    code, out, _ = _run(tracking_url, "runs", "get", unique, run.id, "--json")
    fetched = json.loads(out)
    assert fetched["params"] == {"lr": "1e-3", "model": "rf"}
    assert fetched["metrics"] == {"auc": 0.91, "loss": "NaN"}
    code, out, _ = _run(tracking_url, "runs", "list", unique)
    assert code == 0 and run.id in out
    code, out, _ = _run(
        tracking_url, "runs", "search", "-e", unique, "--filter", "params.model = 'rf'", "--json"
    )
    assert [r["id"] for r in json.loads(out)] == [run.id]


def test_best_and_compare(tracking: TrackingClient, tracking_url: str, unique: str) -> None:
    ids = []
    for depth, auc in ((4, 0.8), (8, 0.9)):
        with tracking.start_run(experiment=unique, parameters={"depth": depth}) as run:
            run.log_metric("auc", auc)
        ids.append(run.id)
    code, out, _ = _run(tracking_url, "runs", "best", unique, "--metric", "auc", "--mode", "min", "--json")
    assert code == 0 and json.loads(out)["id"] == ids[0]
    code, out, _ = _run(tracking_url, "runs", "compare", *ids, "--json")
    assert json.loads(out)["differing_params"] == ["depth"]
    code, out, _ = _run(tracking_url, "runs", "compare", *ids)
    assert code == 0 and "*param depth" in out


def test_upload_and_download_artifacts(
    tracking: TrackingClient, tracking_url: str, unique: str, tmp_path: Path
) -> None:
    run = tracking.start_run(experiment=unique)
    payload = os.urandom(1_500_000)
    (tmp_path / "model.pkl").write_bytes(payload)
    code, out, err = _run(tracking_url, "runs", "upload", unique, run.id, str(tmp_path / "model.pkl"))
    assert code == 0 and "uploaded 1 file(s), 1500000 bytes" in out
    assert "upload model.pkl" in err, "the progress bar goes to stderr"
    target = tmp_path / "copy.pkl"
    code, out, _ = _run(tracking_url, "runs", "download", unique, run.id, "model.pkl", "-o", str(target))
    assert code == 0 and target.read_bytes() == payload


def test_errors_print_code_and_exit_1(tracking: TrackingClient, tracking_url: str, unique: str) -> None:
    code, _, err = _run(tracking_url, "runs", "list", unique)
    assert code == 1 and "EXPERIMENT_NOT_FOUND" in err
    run = tracking.start_run(experiment=unique, parameters={"lr": 0.1})
    code, _, err = _run(tracking_url, "runs", "log-param", unique, run.id, "lr=0.2")
    assert code == 1 and "PARAM_IMMUTABLE" in err
    code, _, err = _run(tracking_url, "runs", "log-metric", unique, run.id, "auc=high")
    assert code == 2 and "needs a number" in err
