"""`scripts/test_mlops_platform.py --comprehensive` against the six services started as real
processes on embedded storage, watched by a real Prometheus and AlertManager (Debian's packages,
started by `make monitor`'s script with the test's ports): the closed loop closes both ways (drift
and a drop in accuracy → the alert firing in Prometheus → routed by AlertManager to the
orchestrator → the retraining run's candidate canaried and promoted; a worse candidate rolled
back) within a few minutes, and the loop's test objects are gone afterwards."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from mlops_kit.testing.backends import free_port, wait_until
from mlops_kit.testing.process import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test_mlops_platform.py"
SERVICES = {
    "model_registry": "MLOPS_MODEL_REGISTRY_URL",
    "feature_store": "MLOPS_FEATURE_STORE_URL",
    "experiment_tracking": "MLOPS_EXPERIMENT_TRACKING_URL",
    "pipeline_orchestrator": "MLOPS_PIPELINE_ORCHESTRATOR_URL",
    "ab_testing": "MLOPS_AB_TESTING_URL",
    "model_serving": "MLOPS_MODEL_SERVING_URL",
}
ROW = re.compile(r"^(ok|FAIL)\s+(\d+)\s+loop: (.*)$")
LOOP = [
    "features ingested, materialized and served online",
    "training pipeline: hyper-parameter search, train, evaluate, register",
    "every trial logged to experiment tracking",
    "best model registered with lineage, production",
    "served: deployment follows production, features from the store",
    "reference profile of the training split",
    "traffic by entity keys only, labels: live accuracy",
    "injected drift (+3 sd on 8 features) and a drop in accuracy",
    "drift and the accuracy drop visible in registry monitoring",
    "retraining policy for the model: drift and performance triggers, rollout canary",
    "alert firing in Prometheus",
    "routed by AlertManager; the orchestrator retrains from the alert",
    "retraining triggered: the recorded trigger, its evidence and its run",
    "the retraining run: trained on the changed data, registered, canary started",
    "its candidate canaried on live traffic",
    "promoted by the canary: production moves, serving hot-swaps",
    "a worse candidate (retrained on stale labels) is rolled back on its own",
    "clean up the loop's test objects",
]
BUDGET_SECONDS = 480


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("validate-loop")
    services = [ServiceProcess(module, env={}, tmp=tmp) for module in SERVICES]
    urls = {SERVICES[s.module]: s.url for s in services}
    env = {
        "MLOPS_DATA_DIR": str(tmp / "data"),
        "MLOPS_LOG_JSON": "false",
        "MLOPS_ENV_FILE": "",
        "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
        **urls,
    }
    for svc in services:
        svc.env.update(env)
    prom, am = free_port(), free_port()
    monitor_env = {
        **os.environ,
        **env,
        **{f"MLOPS_{s.module.upper()}_PORT": str(s.port) for s in services},
        "MLOPS_DATA_DIR": str(tmp),
        "MLOPS_PROMETHEUS_PORT": str(prom),
        "MLOPS_ALERTMANAGER_PORT": str(am),
    }
    monitor = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "dev" / "monitor.py")],
        env=monitor_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(ServiceProcess.start, services))
        for port in (prom, am):
            wait_until(
                lambda p=port: httpx.get(f"http://127.0.0.1:{p}/-/ready", timeout=1).status_code == 200,
                timeout=60,
                what=f"make monitor's port {port} ready",
            )
        yield {
            **urls,
            "MLOPS_PROMETHEUS_URL": f"http://127.0.0.1:{prom}",
            "MLOPS_ALERTMANAGER_URL": f"http://127.0.0.1:{am}",
        }
    finally:
        monitor.send_signal(signal.SIGINT)
        try:
            monitor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            monitor.kill()
        for svc in services:
            svc.stop()


def test_the_loop_closes_both_ways(platform: dict[str, str]) -> None:
    env = {**os.environ, "MLOPS_ENV_FILE": "", **platform}
    env.pop("MLOPS_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--comprehensive"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS,
    )
    print(proc.stdout)
    assert proc.returncode == 0, f"{proc.stdout[-8000:]}\n{proc.stderr[-3000:]}"
    rows = [m for m in (ROW.match(line) for line in proc.stdout.splitlines()) if m]
    assert len(rows) == len(LOOP), proc.stdout
    evidence: dict[str, str] = {}
    for row, name in zip(rows, LOOP, strict=True):  # a long name leaves one space before the evidence
        assert row[1] == "ok" and row[3].startswith(name), row[0]
        evidence[name] = row[3].removeprefix(name).strip()
    # Prometheus fired on the model, AlertManager routed it to the retraining receiver, and the
    # alert started the retraining run; the policy's own drift and performance triggers, added
    # afterwards, fire too and start no second run
    assert "alerts=[" in evidence[LOOP[10]], evidence[LOOP[10]]
    routed = evidence[LOOP[11]]
    assert "pipeline-orchestrator-retrain" in routed, routed
    assert "trigger=alert started: alert Model" in routed, routed
    run = re.match(r"run=(\S+)", routed)
    assert run, routed
    assert re.search(r"alerts=\[.*'Model(Drift|PerformanceDegradation)'", routed), routed
    triggered = evidence[LOOP[12]]
    assert triggered.startswith(f"run={run[1]} run_trigger="), triggered
    assert "trigger=alert from alertmanager" in triggered, triggered
    assert "performance=accuracy=" in triggered and "drift=" in triggered, triggered
    # the controller may hold (too few samples yet) before it decides: only the final decision counts
    assert re.search(r"decisions=\[('hold', )*'promote'\]", evidence[LOOP[15]]), evidence[LOOP[15]]
    assert re.search(r"decisions=\[('hold', )*'rollback'\]", evidence[LOOP[16]]), evidence[LOOP[16]]
    prefix = re.search(r"test objects: (validate-\d{14})-\*", proc.stdout)
    assert prefix, proc.stdout
    policies = httpx.get(f"{platform['MLOPS_PIPELINE_ORCHESTRATOR_URL']}/api/retraining-policies").json()
    assert [p["model"] for p in policies["items"] if p["model"].startswith(prefix[1])] == []
    models = httpx.get(
        f"{platform['MLOPS_MODEL_REGISTRY_URL']}/api/models", params={"name_prefix": prefix[1]}
    ).json()
    assert models["items"] == []
