"""`make monitor` (scripts/dev/monitor.py) for real: Debian's Prometheus and AlertManager start on
the given ports with the generated configuration under the data directory (the repository's
rules loaded, the services of `make run` as targets, the orchestrator's token in a private file),
and Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from mlops_kit.testing.backends import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_make_monitor_runs_prometheus_and_alertmanager_until_ctrl_c(tmp_path: Path) -> None:
    prom, am = free_port(), free_port()
    # `make run`'s default ports (no MLOPS_<SERVICE>_PORT from the caller)
    inherited = {k: v for k, v in os.environ.items() if not (k.startswith("MLOPS_") and k.endswith("_PORT"))}
    env = {
        **inherited,
        "MLOPS_DATA_DIR": str(tmp_path),
        "MLOPS_PROMETHEUS_PORT": str(prom),
        "MLOPS_ALERTMANAGER_PORT": str(am),
        "MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN": "a-local-token-of-24-chars",
        "MLOPS_ENV_FILE": "",
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "dev" / "monitor.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for port in (prom, am):
            wait_until(
                lambda p=port: httpx.get(f"http://127.0.0.1:{p}/-/ready", timeout=1).status_code == 200,
                timeout=60,
                what=f"port {port} ready",
            )
        rules = httpx.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert {"ModelDrift", "ModelPerformanceDegradation", "AvailabilityBudgetBurnFast"} <= names

        def services() -> dict[str, str] | None:
            answer = httpx.get(f"http://127.0.0.1:{prom}/api/v1/targets", timeout=5).json()
            found = {
                t["labels"]["service"]: t["scrapeUrl"]
                for t in answer["data"]["activeTargets"]
                if t["labels"]["job"] == "mlops-services"
            }
            return found if len(found) == 6 else None

        targets = wait_until(services, timeout=30, what="the six services as targets")
        assert targets["pipeline_orchestrator"] == "http://127.0.0.1:8004/metrics"
        token = tmp_path / "monitoring" / "orchestrator-alert-webhook-token"
        assert token.read_text() == "a-local-token-of-24-chars" and token.stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{prom}" in output and f"http://127.0.0.1:{am}" in output
