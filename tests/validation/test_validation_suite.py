"""`scripts/test_mlops_platform.py` (what `make validate` runs) against the six services started as
real processes on embedded storage: every check passes, the table has a row per check with its
time and evidence, and the test objects it created are gone afterwards."""

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
from mlops_kit.testing.backends import free_port
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
ROW = re.compile(r"^(ok|FAIL)\s+(\d+)\s+(\w+): (.+?)\s{2,}(.*)$")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The six services on free ports; client URL variable -> base URL."""
    tmp = tmp_path_factory.mktemp("validate-platform")
    services = [ServiceProcess(module, env={}, tmp=tmp) for module in SERVICES]
    urls = {SERVICES[s.module]: s.url for s in services}
    env = {"MLOPS_DATA_DIR": str(tmp / "data"), "MLOPS_LOG_JSON": "false", "MLOPS_ENV_FILE": "", **urls}
    for svc in services:
        svc.env.update(env)
    try:
        with ThreadPoolExecutor(len(services)) as pool:
            list(pool.map(ServiceProcess.start, services))
        yield urls
    finally:
        for svc in services:
            svc.stop()


def run(script: Path, urls: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_ENV_FILE": "", **urls}
    env.pop("MLOPS_API_KEY", None)
    return subprocess.run(
        [sys.executable, str(script)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def rows(stdout: str) -> list[tuple[str, int, str, str, str]]:
    found = [ROW.match(line) for line in stdout.splitlines()]
    return [(m[1], int(m[2]), m[3], m[4], m[5]) for m in found if m]


def test_the_platform_validation_passes_with_a_row_per_check(platform: dict[str, str]) -> None:
    proc = run(SCRIPT, platform)
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    table = rows(proc.stdout)
    groups = {group for _, _, group, _, _ in table}
    assert groups == {"platform", "registry", "tracking", "features", "pipelines", "ab", "serving"}
    assert all(status == "ok" and evidence for status, _, _, _, evidence in table), proc.stdout
    assert sum(1 for _, _, group, _, _ in table if group == "platform") == 6  # every service's health first
    assert table[0][2] == "platform"
    assert re.search(rf"\n{len(table)} checks: {len(table)} ok, 0 FAIL in [\d.]+ s", proc.stdout)
    prefix = re.search(r"test objects: (validate-\d{14})-\*", proc.stdout)
    assert prefix, proc.stdout
    assert_nothing_left(platform, prefix[1])


def assert_nothing_left(urls: dict[str, str], prefix: str) -> None:
    """What the APIs can delete is gone (tracking experiments are soft-deleted, A/B ones archived)."""
    models = httpx.get(
        f"{urls['MLOPS_MODEL_REGISTRY_URL']}/api/models", params={"name_prefix": prefix}
    ).json()
    assert models["items"] == []
    sets = httpx.get(
        f"{urls['MLOPS_FEATURE_STORE_URL']}/api/feature-sets", params={"name_prefix": prefix}
    ).json()
    assert sets["items"] == []
    pipelines = httpx.get(f"{urls['MLOPS_PIPELINE_ORCHESTRATOR_URL']}/api/pipelines").json()
    assert [p["name"] for p in pipelines["items"] if p["name"].startswith(prefix)] == []
    deployments = httpx.get(f"{urls['MLOPS_MODEL_SERVING_URL']}/api/deployments").json()
    assert [d["name"] for d in deployments["items"] if d["name"].startswith(prefix)] == []
    experiments = httpx.get(f"{urls['MLOPS_AB_TESTING_URL']}/api/experiments", params={"limit": 100}).json()
    assert {e["status"] for e in experiments["items"] if e["key"].startswith(prefix)} == {"archived"}


def test_a_service_that_does_not_answer_fails_its_checks_and_the_exit_status() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    proc = run(ROOT / "scripts" / "test_model_registry.py", {"MLOPS_MODEL_REGISTRY_URL": nowhere})
    assert proc.returncode == 1
    table = rows(proc.stdout)
    assert table[0][:4] == ("FAIL", table[0][1], "platform", "registry /health and /ready")
    assert "ConnectError" in table[0][4]
    first_journey_step = table[1]
    assert first_journey_step[0] == "FAIL" and "SERVICE_UNREACHABLE" in first_journey_step[4]
    assert all(status == "FAIL" for status, *_ in table[2:-1])
    assert "not run: needs 'register a version with its artifact'" in table[2][4]
    assert "FAIL platform: registry /health and /ready" in proc.stdout.split("checks:")[1]
