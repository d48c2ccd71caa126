"""`make monitor`: a real Prometheus and AlertManager (Debian's `prometheus` and
`prometheus-alertmanager` packages) beside `make run`, watching the services on their local ports.

The configuration is generated from the repository's (monitoring/): the same rules, the same
AlertManager routes, with the targets on 127.0.0.1 and the retraining webhook pointed at the local
orchestrator (`http://127.0.0.1:8004/api/triggers/alertmanager`), carrying the orchestrator's
alert webhook token when one is set (MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN, from the
environment or .env). Data lives under ./.mlops/monitoring. Ctrl-C stops both.

Ports: MLOPS_PROMETHEUS_PORT (9090), MLOPS_ALERTMANAGER_PORT (9093); the services' as `make run`
reads them (MLOPS_<SERVICE>_PORT).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's
STARTUP_SECONDS = 60.0
COMPOSE_ONLY_JOBS = ("postgres", "redis", "minio")  # exporters of compose's backends


def service_ports() -> list[tuple[str, int]]:
    """(module, port) of every service, as `make run` (scripts/dev/run_all.py) starts them."""
    spec = importlib.util.spec_from_file_location("mlops_run_all", ROOT / "scripts" / "dev" / "run_all.py")
    assert spec is not None and spec.loader is not None
    run_all = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = run_all  # its dataclasses look their module up
    spec.loader.exec_module(run_all)
    return list(run_all.selected_services([]))


def prometheus_config(
    targets: list[tuple[str, str]],
    *,
    rule_files: list[str],
    alertmanager: str | None,
    interval: str = "15s",
) -> dict[str, Any]:
    """The compose configuration (monitoring/prometheus/prometheus.yml) with these targets:
    (service module, host:port) for the platform services, the same job and labels."""
    config: dict[str, Any] = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["global"]["scrape_timeout"] = interval if _seconds(interval) < 10 else "10s"
    config["rule_files"] = rule_files
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    else:
        config.pop("alerting", None)
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in COMPOSE_ONLY_JOBS:
            continue
        if job["job_name"] == "mlops-services":
            job["static_configs"] = [
                {"targets": [hostport], "labels": {"service": m}} for m, hostport in targets
            ]
        elif job["job_name"] == "alertmanager":
            if not alertmanager:
                continue
            job["static_configs"] = [{"targets": [alertmanager]}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    return float(duration)


def alertmanager_config(webhook_url: str, token_file: Path | None) -> dict[str, Any]:
    """monitoring/alertmanager/alertmanager.yml with the retraining webhook at `webhook_url`,
    authenticated by the token in `token_file` (no Authorization header without one)."""
    config: dict[str, Any] = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook_url
            if token_file is None:
                hook.pop("http_config", None)
            else:
                hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


def webhook_token() -> str | None:
    """The orchestrator's alert webhook token, read as the orchestrator reads it (env, .env)."""
    from pipeline_orchestrator.settings import OrchestratorSettings

    token = OrchestratorSettings().alert_webhook_token
    return token.get_secret_value() if token is not None else None


def binary(names: tuple[str, ...], package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        f"error: {names[0]} not found; install Debian's '{package}' package (sudo apt-get install {package}) "
        "or run `make check-monitoring` as root, which installs it"
    )


def write_configs(data: Path, prom_port: int, am_port: int) -> tuple[Path, Path]:
    """Prometheus' and AlertManager's configuration under `data`; returns their paths."""
    data.mkdir(parents=True, exist_ok=True)
    token = webhook_token()
    token_file = None
    if token:
        token_file = data / "orchestrator-alert-webhook-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
    ports = dict(service_ports())
    orchestrator = ports.get("pipeline_orchestrator", 8004)
    am_path = data / "alertmanager.yml"
    am_path.write_text(
        yaml.safe_dump(
            alertmanager_config(f"http://127.0.0.1:{orchestrator}/api/triggers/alertmanager", token_file),
            sort_keys=False,
        )
    )
    prom = prometheus_config(
        [(module, f"127.0.0.1:{port}") for module, port in ports.items()],
        rule_files=[str(p) for p in sorted((MONITORING / "prometheus" / "rules").glob("*.rules.yml"))],
        alertmanager=f"127.0.0.1:{am_port}",
        interval="5s",
    )
    for job in prom["scrape_configs"]:
        if job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{prom_port}"]}]
    prom_path = data / "prometheus.yml"
    prom_path.write_text(yaml.safe_dump(prom, sort_keys=False))
    return prom_path, am_path


def start_prometheus(config: Path, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return _spawn(
        [
            binary(PROMETHEUS_BINARIES, "prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=7d",
        ],
        log,
    )


def start_alertmanager(config: Path, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return _spawn(
        [
            binary(ALERTMANAGER_BINARIES, "prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            # a laptop alone: no peers to gossip with
            "--cluster.listen-address=",
        ],
        log,
    )


def _spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within {STARTUP_SECONDS:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Stop(Exception):
    """A stop signal arrived."""


def on_signal(signum: int, _frame: FrameType | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    data = Path(os.environ.get("MLOPS_DATA_DIR", str(ROOT / ".mlops"))) / "monitoring"
    prom_port = int(os.environ.get("MLOPS_PROMETHEUS_PORT", "9090"))
    am_port = int(os.environ.get("MLOPS_ALERTMANAGER_PORT", "9093"))
    prom_config, am_config = write_configs(data, prom_port, am_port)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        am = start_alertmanager(am_config, data / "alertmanager", am_port, data / "alertmanager.log")
        processes.append(am)
        prom = start_prometheus(prom_config, data / "prometheus", prom_port, data / "prometheus.log")
        processes.append(prom)
        wait_ready(f"http://127.0.0.1:{am_port}", am, data / "alertmanager.log")
        wait_ready(f"http://127.0.0.1:{prom_port}", prom, data / "prometheus.log")
        print(f"  prometheus    http://127.0.0.1:{prom_port}  (alerts: http://127.0.0.1:{prom_port}/alerts)")
        print(f"  alertmanager  http://127.0.0.1:{am_port}")
        print(
            f"configuration and data in {data}; `make run` in another terminal; Ctrl-C stops both", flush=True
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("error: prometheus or alertmanager exited; see the logs in " + str(data), file=sys.stderr)
        return 1
    except Stop as signame:
        print(f"\n{signame}: stopping prometheus and alertmanager", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for process in processes:
            stop(process)


if __name__ == "__main__":
    sys.exit(main())
