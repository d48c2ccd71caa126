"""Model registry benchmark: latency through the Python client, 200 MB streaming, peak RSS.

Starts a real registry process on embedded storage (SQLite + local files) on a free loopback
port, drives it through `mlops_client`, and writes the figures to
scripts/bench/results/registry.json and registry.md.

    uv run python scripts/bench/registry_bench.py [--requests 1000] [--artifact-mb 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from benchkit import cpu_calibration, free_port, percentile
from mlops_client import RegistryClient

RESULTS = Path(__file__).resolve().parent / "results"


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


class PeakRss:
    """Samples the service's resident memory (and reads the kernel's high-water mark)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def hwm(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return self.peak

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def start_service(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MLOPS_DATA_DIR": str(data_dir),
        "MLOPS_MODEL_REGISTRY_PORT": str(port),
        "MLOPS_LOG_LEVEL": "WARNING",
    }
    for key in [k for k in env if k.startswith("MLOPS_") and k.endswith(("DATABASE_URL", "API_KEYS"))]:
        env.pop(key)
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_registry"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("registry did not become healthy within 60 s")


def bench_latency(client: RegistryClient, n: int) -> dict[str, object]:
    register, get, resolve = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        version = client.register_model(
            "bench-model", framework="sklearn", metrics={"accuracy": 0.9 + i / (10 * n)}, tags=["bench"]
        )
        t1 = time.perf_counter()
        client.get_version("bench-model", version.version)
        t2 = time.perf_counter()
        register.append(t1 - t0)
        get.append(t2 - t1)
    client.set_alias("bench-model", "production", str(n // 2))
    for _ in range(n):
        t0 = time.perf_counter()
        client.get_version("bench-model", "@production")
        resolve.append(time.perf_counter() - t0)
    return {"register": summary(register), "get_version": summary(get), "resolve_alias": summary(resolve)}


def bench_artifact(client: RegistryClient, rss: PeakRss, workdir: Path, mb: int) -> dict[str, object]:
    source = workdir / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as fh:
        block = os.urandom(1024 * 1024)
        for i in range(mb):
            chunk = block[:-8] + i.to_bytes(8, "big")
            digest.update(chunk)
            fh.write(chunk)
    client.register_model("bench-artifact", version="1.0.0", framework="pytorch")
    rss_before = rss.proc.memory_info().rss
    t0 = time.perf_counter()
    uploaded = client.upload_artifact("bench-artifact", "1.0.0", source)
    upload_s = time.perf_counter() - t0
    assert uploaded.sha256 == digest.hexdigest(), "server checksum differs from the file's"
    target = workdir / "downloaded.bin"
    t0 = time.perf_counter()
    client.download_artifact("bench-artifact", "1.0.0", target)
    download_s = time.perf_counter() - t0
    with open(target, "rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == digest.hexdigest()
    size = source.stat().st_size
    return {
        "size_mb": mb,
        "upload_s": round(upload_s, 3),
        "upload_mb_per_s": round(size / 2**20 / upload_s, 1),
        "download_s": round(download_s, 3),
        "download_mb_per_s": round(size / 2**20 / download_s, 1),
        "service_rss_before_mb": round(rss_before / 2**20, 1),
        "service_peak_rss_mb": round(max(rss.peak, rss.hwm()) / 2**20, 1),
    }


def write(results: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "registry.json").write_text(json.dumps(results, indent=2) + "\n")
    lat = results["latency"]
    art = results["artifact"]
    lines = [
        "# Model registry benchmark",
        "",
        f"{results['when']} on {results['machine']}; embedded storage (SQLite + local files); "
        "requests through `mlops_client.RegistryClient` over loopback HTTP.",
        "",
        "| operation | n | p50 ms | p99 ms | max ms | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    targets = {"resolve_alias": "p99 < 5 ms"}
    for name, stats in lat.items():  # type: ignore[union-attr]
        lines.append(
            f"| {name} | {stats['n']} | {stats['p50_ms']} | {stats['p99_ms']} | "
            f"{stats['max_ms']} | {targets.get(name, '')} |"
        )
    lines += [
        "",
        f"| {art['size_mb']} MB artifact | seconds | MB/s |",
        "| --- | --- | --- |",  # type: ignore[index]
        f"| upload (streamed PUT, sha256 checked) | {art['upload_s']} | {art['upload_mb_per_s']} |",  # type: ignore[index]
        f"| download (streamed GET, sha256 checked) | {art['download_s']} | {art['download_mb_per_s']} |",  # type: ignore[index]
        "",
        f"Service RSS: {art['service_rss_before_mb']} MB before the transfer, "  # type: ignore[index]
        f"peak {art['service_peak_rss_mb']} MB (target: under 150 MB).",
        "",  # type: ignore[index]
    ]
    (RESULTS / "registry.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--artifact-mb", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        proc = start_service(workdir / "data", port)
        try:
            with RegistryClient(f"http://127.0.0.1:{port}") as client:
                latency = bench_latency(client, args.requests)
                with PeakRss(proc.pid) as rss:
                    artifact = bench_artifact(client, rss, workdir, args.artifact_mb)
                results = {
                    "cpu_calibration_s": cpu_calibration(),
                    "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}",
                    "latency": latency,
                    "artifact": artifact,
                }
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    write(results)
    print((RESULTS / "registry.md").read_text())


if __name__ == "__main__":
    main()
