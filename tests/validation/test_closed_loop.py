"""`scripts/test_mlops_platform.py --comprehensive --without-alerting` against the six services
started as real processes on embedded storage: the closed loop closes both ways (retraining policy
→ its run's candidate canaried and promoted; a worse candidate rolled back) within a few minutes,
and the loop's test objects are gone afterwards. The Prometheus and AlertManager steps are left
out (they need `make monitor`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
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
    try:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(ServiceProcess.start, services))
        yield urls
    finally:
        for svc in services:
            svc.stop()


def test_the_loop_closes_both_ways(platform: dict[str, str]) -> None:
    env = {**os.environ, "MLOPS_ENV_FILE": "", **platform}
    env.pop("MLOPS_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--comprehensive", "--without-alerting"],
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
    assert "run=" in evidence[LOOP[10]] and "evidence=" in evidence[LOOP[10]]
    # the controller may hold (too few samples yet) before it decides: only the final decision counts
    assert re.search(r"decisions=\[('hold', )*'promote'\]", evidence[LOOP[13]]), evidence[LOOP[13]]
    assert re.search(r"decisions=\[('hold', )*'rollback'\]", evidence[LOOP[14]]), evidence[LOOP[14]]
    prefix = re.search(r"test objects: (validate-\d{14})-\*", proc.stdout)
    assert prefix, proc.stdout
    policies = httpx.get(f"{platform['MLOPS_PIPELINE_ORCHESTRATOR_URL']}/api/retraining-policies").json()
    assert [p["model"] for p in policies["items"] if p["model"].startswith(prefix[1])] == []
    models = httpx.get(
        f"{platform['MLOPS_MODEL_REGISTRY_URL']}/api/models", params={"name_prefix": prefix[1]}
    ).json()
    assert models["items"] == []
