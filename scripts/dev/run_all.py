"""`make run`: start every service that exists on its port with embedded storage; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [  # (folder, module, port, env prefix)
    ("model_registry", "model_registry", 8000, "MODEL_REGISTRY"),
    ("feature_store", "feature_store", 8002, "FEATURE_STORE"),
    ("experiment_tracking", "experiment_tracking", 8003, "EXPERIMENT_TRACKING"),
    ("pipeline_orchestrator", "pipeline_orchestrator", 8004, "PIPELINE_ORCHESTRATOR"),
    ("ab_testing", "ab_testing", 8090, "AB_TESTING"),
]


def main() -> int:
    env = {**os.environ, "MLOPS_DATA_DIR": os.environ.get("MLOPS_DATA_DIR", str(ROOT / ".mlops"))}
    env.setdefault("MLOPS_LOG_JSON", "false")
    procs: list[tuple[str, int, subprocess.Popen[bytes]]] = []
    for folder, module, port, prefix in SERVICES:
        if not (ROOT / "services" / folder / "src" / module).is_dir():
            continue
        port = int(os.environ.get(f"MLOPS_{prefix}_PORT", port))
        proc_env = {**env, f"MLOPS_{prefix}_PORT": str(port)}
        # own process group: Ctrl-C reaches only this runner, which stops each service once
        proc = subprocess.Popen([sys.executable, "-m", module], env=proc_env, start_new_session=True)
        procs.append((module, port, proc))

    def stop(*_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, _, proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        pending = {module: port for module, port, _ in procs}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for module, port in list(pending.items()):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        print(f"  {module:<24} http://127.0.0.1:{port}/docs", flush=True)
                        del pending[module]
                except httpx.HTTPError:
                    pass
            if any(proc.poll() is not None for _, _, proc in procs):
                print("a service exited during start-up; stopping", file=sys.stderr)
                stop()
                return 1
            time.sleep(0.2)
        print(
            f"{len(procs) - len(pending)} service(s) up, data in {env['MLOPS_DATA_DIR']}; Ctrl-C stops all",
            flush=True,
        )
        while all(proc.poll() is None for _, _, proc in procs):
            time.sleep(0.5)
        print("a service exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping services", flush=True)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
