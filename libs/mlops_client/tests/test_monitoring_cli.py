"""`mlops monitor ...` against a real registry process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlops_client import MonitoringClient, RegistryClient
from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--url", url, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def model(registry: RegistryClient, unique: str) -> str:
    registry.register_model(unique, version="1", metrics={"accuracy": 0.5})
    return unique


def _csv(path: Path, n: int = 1200) -> Path:
    rng = np.random.default_rng(5)
    lines = ["f1,zip,prediction"] + [
        f"{rng.normal():.6f},{rng.choice(['02110', '10001'])},{rng.integers(0, 2)}" for _ in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _log(registry_url: str, model: str, shift: float) -> None:
    rng = np.random.default_rng(6)
    rows = [
        {
            "request_id": f"cli-{i}",
            "features": {"f1": float(rng.normal(shift)), "zip": "02110"},
            "prediction": int(i % 2),
        }
        for i in range(300)
    ]
    with MonitoringClient(registry_url) as client:
        client.log_predictions_sync(model, rows, version="1")
        client.log_labels(model, {f"cli-{i}": i % 2 for i in range(200)})


def test_reference_upload_shows_the_columns_and_a_progress_bar(
    registry_url: str, model: str, tmp_path: Path
) -> None:
    source = _csv(tmp_path / "train.csv")
    code, out, err = _run(
        registry_url, "monitor", "reference", model, "1", str(source), "--type", "zip:categorical"
    )
    assert code == 0, err
    assert "1200 rows" in out and "categorical" in out and "zip" in out
    assert f"upload {source.name}" in err
    code, out, _ = _run(registry_url, "monitor", "reference", model, "1", "--json")
    stored = json.loads(out)
    assert code == 0 and stored["rows"] == 1200
    assert {c["name"]: c["kind"] for c in stored["columns"]}["zip"] == "categorical"
    assert "profile" in stored


def test_drift_and_performance_tables_and_json(registry_url: str, model: str, tmp_path: Path) -> None:
    source = str(_csv(tmp_path / "t.csv"))
    assert _run(registry_url, "monitor", "reference", model, "1", source, "--type", "zip:categorical")[0] == 0
    _log(registry_url, model, shift=2.0)
    code, out, err = _run(registry_url, "monitor", "drift", model, "--last", "1h")
    assert code == 0, err
    assert "f1" in out and "DRIFTED" in out and "300 predictions in the window" in out
    code, out, _ = _run(registry_url, "monitor", "drift", model, "-v", "1", "--last-n", "100", "--json")
    report = json.loads(out)
    assert report["window"]["count"] == 100 and "f1" in report["dataset"]["drifted_features"]
    code, out, err = _run(registry_url, "monitor", "performance", model)
    assert code == 0, err
    assert "accuracy" in out and "200 labelled" in out
    code, out, _ = _run(registry_url, "monitor", "performance", model, "--json")
    performance = json.loads(out)
    assert performance["performance"]["metrics"]["accuracy"]["value"] == 1.0
    assert performance["registered"]["accuracy"]["registered"] == 0.5
    page = tmp_path / "report.html"
    code, out, err = _run(registry_url, "monitor", "report", model, "--last", "1h", "-o", str(page))
    assert code == 0, err
    assert f"saved {page}" in out and "f1" in page.read_text(encoding="utf-8")
    code, out, _ = _run(registry_url, "monitor", "report", model, "--last-n", "50")
    assert code == 0 and out.lstrip().lower().startswith("<!doctype html")


def test_errors_print_code_and_exit(registry_url: str, model: str, tmp_path: Path) -> None:
    code, _, err = _run(registry_url, "monitor", "drift", model, "-v", "1")
    assert code == 1 and "REFERENCE_NOT_FOUND" in err
    code, _, err = _run(registry_url, "monitor", "reference", model, "1", str(tmp_path / "none.csv"))
    assert code == 2 and "is not a file" in err
    code, _, err = _run(registry_url, "monitor", "reference", model, "1", "--type", "zip:text")
    assert code == 2 and "column:kind" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("f1\n1.0\nhigh\n")
    code, _, err = _run(registry_url, "monitor", "reference", model, "1", str(bad), "--type", "f1:numeric")
    assert code == 1 and "COLUMN_TYPE_MISMATCH" in err


def test_an_alert_rule_fires_and_the_alerts_table_shows_its_evidence(
    registry_url: str, model: str, tmp_path: Path
) -> None:
    source = str(_csv(tmp_path / "t.csv"))
    assert _run(registry_url, "monitor", "reference", model, "1", source, "--type", "zip:categorical")[0] == 0
    _log(registry_url, model, shift=2.0)
    config = {
        "monitoring_interval_seconds": 3600,
        "window": "1d",
        "alert_rules": [
            {
                "name": "f1-moved",
                "alert_type": "drift",
                "severity": "critical",
                "metric_name": "drifted:f1",
                "operator": "gt",
                "threshold": 0.5,
                "duration_minutes": 0,
            },
            {
                "name": "accuracy-low",
                "alert_type": "performance",
                "severity": "warning",
                "metric_name": "accuracy",
                "operator": "lt",
                "threshold": 0.9,
                "duration_minutes": 0,
            },
        ],
    }
    (tmp_path / "monitoring.json").write_text(json.dumps(config))
    code, out, err = _run(
        registry_url, "monitor", "config", model, "--set", str(tmp_path / "monitoring.json")
    )
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)["alert_rules"]] == ["f1-moved", "accuracy-low"]
    code, out, err = _run(registry_url, "monitor", "alerts", model, "--evaluate")
    assert code == 0, err
    lines = {
        line.split()[1]: line for line in out.splitlines() if "f1-moved" in line or "accuracy-low" in line
    }
    assert "firing" in lines["f1-moved"] and "drifted:f1 = 1" in lines["f1-moved"]
    assert "firing" not in lines["accuracy-low"]  # every logged prediction was right: accuracy 1.0
    with MonitoringClient(registry_url) as client:
        alerts = client.alerts(model)
        states = {r["rule"]: r["state"] for r in alerts["rules"]}
        assert states == {"f1-moved": "firing", "accuracy-low": "inactive"}
        assert (
            alerts["history"][0]["to_state"] == "firing" and alerts["history"][0]["evidence"]["value"] == 1.0
        )
        client.delete_config(model)
        assert client.alerts(model)["rules"] == []
