"""Every service, started as a real process on embedded storage, stops with all its children within
10 s on SIGTERM or SIGINT, sent to its process group (systemd, Ctrl-C) or to its main pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from mlops_kit.testing.process import ServiceProcess

STOP_SECONDS = 10.0


def settled_tree(pid: int, timeout: float = 120) -> list[psutil.Process]:
    """The service and its children once the children have started and gone idle (the A/B folders
    are then waiting in their loop: where a signal used to leave a lock held)."""
    root = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    last: dict[int, float] = {}
    idle = 0
    while time.monotonic() < deadline:
        procs = [root, *root.children(recursive=True)]
        cpu = {p.pid: sum(p.cpu_times()[:2]) for p in procs if p.is_running()}
        quiet = cpu.keys() == last.keys() and all(cpu[k] - last[k] < 0.05 for k in cpu if k != pid)
        idle = idle + 1 if quiet else 0
        if idle >= 3:  # 1.5 s without work: imports done, waiting in their loops
            return procs
        last = cpu
        time.sleep(0.5)
    raise AssertionError(f"the children of {pid} did not settle within {timeout} s")


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


CASES = [  # every service with each signal and target; those with children (A/B folders,
    # orchestrator workers) with all four
    *[
        (m, sig, t)
        for m in ("ab_testing", "pipeline_orchestrator")
        for sig in ("SIGTERM", "SIGINT")
        for t in ("group", "pid")
    ],
    ("model_registry", "SIGTERM", "group"),
    ("model_registry", "SIGINT", "pid"),
    ("feature_store", "SIGINT", "group"),
    ("feature_store", "SIGTERM", "pid"),
    ("experiment_tracking", "SIGTERM", "group"),
    ("experiment_tracking", "SIGINT", "pid"),
    ("model_serving", "SIGTERM", "group"),
    ("model_serving", "SIGINT", "pid"),
]


@pytest.mark.parametrize(("module", "signame", "target"), CASES)
def test_service_and_its_children_stop_within_10_s(
    tmp_path: Path, module: str, signame: str, target: str
) -> None:
    env = {"MLOPS_DATA_DIR": str(tmp_path / "data"), "MLOPS_LOG_JSON": "false", "MLOPS_LOG_LEVEL": "INFO"}
    with ServiceProcess(module, env=env, tmp=tmp_path) as svc:
        assert svc.process is not None
        tree = settled_tree(svc.process.pid)
        if module in ("ab_testing", "pipeline_orchestrator"):
            assert len(tree) >= 3, "its folders / workers run as child processes"
        (os.killpg if target == "group" else os.kill)(svc.process.pid, getattr(signal, signame))
        deadline = time.monotonic() + STOP_SECONDS
        while alive(tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [(p.pid, " ".join(p.cmdline())[:80]) for p in alive(tree)]
        assert not left, f"still running {STOP_SECONDS} s after {signame} to the {target}: {left}"
        log = svc.log_tail(100_000)
        assert "leaked" not in log, log
        if module == "ab_testing":  # its folders take stop signals only once started
            assert "Traceback" not in log, log
