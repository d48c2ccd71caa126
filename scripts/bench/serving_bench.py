"""Model serving benchmark: ours against `mlflow models serve`, side by side in one run.

The model (seeded): a 100-tree RandomForestClassifier on 20 features (`feature_0` ... `feature_19`),
fitted on 5,000 synthetic rows (`make_classification`) and saved ONCE with
`mlflow.sklearn.save_model` (signature inferred from the frame) to a temporary directory.

- MLflow (the latest 3.x, with our scikit-learn version and pandas, in its own venv under
  `.bench/mlflow-venv`, created with uv on first use): `mlflow models serve -m <dir> --env-manager
  local --workers 1 --host 127.0.0.1 --port P`, waited for on `/ping`; its `POST /invocations` gets
  `dataframe_split` bodies.
- Ours: a model registry process (SQLite, temporary data dir) holding the same directory as version 1
  of `bench-rf` (alias `production`) and one model serving process (`python -m model_serving`, one
  worker) with two deployments of it: `bench-nolog` (`"monitoring": false`) and `bench-log`
  (monitoring on, the default: every prediction goes to the registry's prediction log from a
  background queue; `bench-log` is also the default deployment `/invocations` serves). Each gets
  `POST /api/deployments/{name}/predict` with `instances`, and the MLflow protocol with the same
  `dataframe_split` bytes MLflow gets (`/invocations` for `bench-log`, `/api/deployments/bench-nolog/
  invocations` for the other).

The same client code runs against every route: one `http.client.HTTPConnection` per thread
(keep-alive), bodies encoded before the clock starts, answers read but not decoded. Figures: single
row p50/p99 (sequential, after a warm-up), batch of 100 p50/p99, requests/s of single rows with 8
client threads for a fixed time (with latency under load), errors, and the CPU the server process
group, the registry and this client used. Then 10 alias swaps under load: version 2 (another seed) is
registered and `production` moved between the two while 8 clients predict; non-200 answers are
counted, both versions must answer, and each swap's delay (until both deployments' status shows it,
and until the first answer from it) is recorded. With a missed target (or --profile-all), py-spy
records the serving process during a further throughput run and the hot frames are reported.

Targets (issue 14): ours >= 3x MLflow's throughput, single-row p99 < 5 ms with logging on, 0 errors
during 10 alias swaps. Results: scripts/bench/results/serving.json and serving.md.

    uv run python scripts/bench/serving_bench.py [--quick [--write]] [--seconds 20] [--profile-all]

--quick (fewer requests, 3 s throughput runs, 4 swaps) takes about a minute once the venv exists;
it prints the figures and writes nothing unless --write.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit
import httpx
import numpy as np
import orjson
import pandas as pd
import sklearn
from benchkit import PySpy, Server, cal, fmt, machine_state, percentile, source_state, verdict
from mlops_client import RegistryClient
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
N_FEATURES, N_TREES, N_ROWS, BATCH = 20, 100, 5_000, 100
COLUMNS = [f"feature_{i}" for i in range(N_FEATURES)]
MODEL = "bench-rf"
NOLOG, LOG = "bench-nolog", "bench-log"
CLIENTS = 8
TARGET_RATIO, TARGET_P99_MS, TARGET_SWAPS = 3.0, 5.0, 10
MLFLOW_SPEC = ("mlflow>=3,<4", f"scikit-learn=={sklearn.__version__}", "pandas")
# the same thread limits for both servers (a 2-core machine; a forest's predict uses none of them)
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
HEADERS = {"Content-Type": "application/json"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    single: int
    batch: int
    seconds: float
    swaps: int
    dwell: float
    profile_seconds: float


FULL = Sizes(single=3000, batch=500, seconds=20.0, swaps=TARGET_SWAPS, dwell=1.5, profile_seconds=15.0)
QUICK = Sizes(single=300, batch=50, seconds=3.0, swaps=4, dwell=0.3, profile_seconds=4.0)


# ---------------------------------------------------------------------------------------------
# the model


def train(seed: int) -> tuple[RandomForestClassifier, pd.DataFrame]:
    X, y = make_classification(
        n_samples=N_ROWS, n_features=N_FEATURES, n_informative=10, n_redundant=4, random_state=seed
    )
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = RandomForestClassifier(n_estimators=N_TREES, random_state=seed).fit(frame, y)
    return model, frame


def save(model: RandomForestClassifier, frame: pd.DataFrame, folder: Path) -> Path:
    """The MLflow model directory both servers read (MLflow directly, ours through the registry)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(frame.head(50), model.predict(frame.head(50)))
    # MLflow 3's default format (skops) refuses tree internals unless they are named as trusted
    trusted = ["sklearn.tree._tree.Tree"]
    shutil.rmtree(folder, ignore_errors=True)  # a kept folder (--keep) from an earlier run
    # requirements named: MLflow would otherwise spend seconds inferring them from this environment
    requirements = [f"scikit-learn=={sklearn.__version__}"]
    mlflow.sklearn.save_model(
        model, str(folder), signature=signature, skops_trusted_types=trusted, pip_requirements=requirements
    )
    return folder


def bodies(frame: pd.DataFrame, seed: int) -> dict[str, list[bytes]]:
    """Pre-encoded bodies: single rows and batches of BATCH, as MLflow's `dataframe_split` and as
    our `instances` (the same rows in the same order)."""
    rng = np.random.default_rng(seed)
    rows = np.round(frame.to_numpy()[rng.permutation(len(frame))], 6).tolist()
    singles = [rows[i : i + 1] for i in range(256)]
    batches = [rows[i : i + BATCH] for i in range(0, 20 * BATCH, BATCH)]

    def split(chunks: list[list[list[float]]]) -> list[bytes]:
        return [orjson.dumps({"dataframe_split": {"columns": COLUMNS, "data": c}}) for c in chunks]

    def instances(chunks: list[list[list[float]]]) -> list[bytes]:
        return [orjson.dumps({"instances": c}) for c in chunks]

    return {
        "split_single": split(singles),
        "split_batch": split(batches),
        "instances_single": instances(singles),
        "instances_batch": instances(batches),
    }


# ---------------------------------------------------------------------------------------------
# MLflow in its own venv


def mlflow_env(venv: Path) -> dict[str, str]:
    path = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return benchkit.clean_env(("MLFLOW_",), PATH=path, DO_NOT_TRACK="1", **THREADS)


def venv_versions(venv: Path) -> dict[str, str] | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import json, platform; from importlib.metadata import version as v; print(json.dumps("
            "{p: v(p) for p in ('mlflow', 'scikit-learn', 'pandas', 'numpy', 'uvicorn', 'fastapi')}"
            " | {'python': platform.python_version()}))",
        ],
        capture_output=True,
        text=True,
        env=mlflow_env(venv),
        timeout=120,
    )
    return json.loads(probe.stdout) if probe.returncode == 0 else None


def fits(found: dict[str, str] | None) -> bool:
    return bool(found) and found["mlflow"].startswith("3.") and found["scikit-learn"] == sklearn.__version__  # type: ignore[index]


def ensure_mlflow_venv(cache: Path) -> tuple[Path, dict[str, Any]]:
    """<cache>/mlflow-venv with the latest mlflow 3.x, our scikit-learn and pandas, reused when it fits."""
    venv = cache / "mlflow-venv"
    found = venv_versions(venv)
    if fits(found):
        return venv, {"reused": True, **(found or {})}
    uv, env = benchkit.uv_command("MLflow's venv"), mlflow_env(venv)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"creating {venv} with {' '.join(MLFLOW_SPEC)}", flush=True)
    subprocess.run(
        [*uv, "venv", "--clear", "--python", platform.python_version(), str(venv)],
        check=True,
        env=env,
        timeout=300,
    )
    python = str(venv / "bin" / "python")
    subprocess.run(
        [*uv, "pip", "install", "--python", python, *MLFLOW_SPEC], check=True, env=env, timeout=900
    )
    found = venv_versions(venv)
    if not fits(found):
        raise RuntimeError(f"{venv} has {found}, wanted {' '.join(MLFLOW_SPEC)}")
    return venv, {"reused": False, "install_s": round(time.perf_counter() - t0, 1), **(found or {})}


def start_mlflow(venv: Path, model_dir: Path, folder: Path) -> tuple[Server, float]:
    port = benchkit.free_port()
    cmd = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    cmd += ["--workers", "1", "--port", str(port), "--host", "127.0.0.1"]
    server = Server("mlflow", cmd, mlflow_env(venv), port, folder / "mlflow.log")
    started = server.start(timeout=300)  # its /health is its /ping's handler
    if httpx.get(f"{server.uri}/ping", timeout=5).status_code != 200:
        raise RuntimeError(f"MLflow's /ping is not 200:\n{server.log_tail()}")
    return server, started


# ---------------------------------------------------------------------------------------------
# ours: a registry and one serving process


def start_registry(folder: Path) -> Server:
    port = benchkit.free_port()
    env = benchkit.clean_env(
        MLOPS_DATA_DIR=str(folder / "registry"),
        MLOPS_MODEL_REGISTRY_PORT=str(port),
        MLOPS_MODEL_REGISTRY_DATABASE_URL=f"sqlite:///{folder / 'registry.db'}",
        MLOPS_LOG_LEVEL="WARNING",
    )
    server = Server("registry", [sys.executable, "-m", "model_registry"], env, port, folder / "registry.log")
    server.start(timeout=120)
    return server


def start_serving(folder: Path, registry_url: str) -> tuple[Server, float]:
    port = benchkit.free_port()
    env = benchkit.clean_env(
        (),
        MLOPS_DATA_DIR=str(folder / "serving"),
        MLOPS_MODEL_SERVING_PORT=str(port),
        MLOPS_MODEL_REGISTRY_URL=registry_url,
        # no A/B service or feature store in this run: nothing listens there
        MLOPS_AB_TESTING_URL=f"http://127.0.0.1:{benchkit.free_port()}",
        MLOPS_FEATURE_STORE_URL=f"http://127.0.0.1:{benchkit.free_port()}",
        MLOPS_MODEL_SERVING_DEFAULT_DEPLOYMENT=LOG,
        MLOPS_LOG_LEVEL="WARNING",
        **THREADS,
    )
    server = Server("serving", [sys.executable, "-m", "model_serving"], env, port, folder / "serving.log")
    return server, server.start(timeout=120)


def deploy(serving: Server, registry: RegistryClient, model_dir: Path) -> dict[str, Any]:
    """Version 1 = the MLflow directory, `production` on it, the two deployments loaded."""
    t0 = time.perf_counter()
    version = registry.register_model(MODEL, framework="sklearn", path=model_dir).version
    registry.set_alias(MODEL, "production", version)
    register_s = time.perf_counter() - t0
    for name, monitoring in ((NOLOG, False), (LOG, True)):
        body = {"name": name, "model": MODEL, "alias": "production", "monitoring": monitoring}
        answer = httpx.post(f"{serving.uri}/api/deployments", json=body, timeout=30)
        if answer.status_code != 201:
            raise RuntimeError(f"deploying {name}: {answer.status_code} {answer.text}")
    t0 = time.perf_counter()
    status = {name: wait_loaded(serving.uri, name, version, 120) for name in (NOLOG, LOG)}
    return {
        "version": version,
        "register_s": round(register_s, 2),
        "deploy_to_loaded_s": round(time.perf_counter() - t0, 2),
        "loaded": {name: s["status"]["loaded"] for name, s in status.items()},
    }


def wait_loaded(uri: str, name: str, version: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=uri, timeout=5) as client:
        while True:
            body: dict[str, Any] = client.get(f"/api/deployments/{name}").json()
            loaded = body["status"]["loaded"]
            if loaded and loaded["version"] == version:
                return body
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not serve version {version} within {timeout:.0f} s: {body}")
            time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# the client: one keep-alive connection per thread, pre-encoded bodies, answers not decoded

VERSION_IN_ANSWER = re.compile(rb'"model_version":"([^"]*)"')


@dataclass
class Tally:
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    versions: collections.Counter[str] = field(default_factory=collections.Counter)
    changes: list[tuple[float, str]] = field(default_factory=list)  # (when, version) first seen


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", path, body, HEADERS)
            answer = self.conn.getresponse()
            return answer.status, answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # reconnects on the next request
            return 0, repr(exc).encode()

    def close(self) -> None:
        self.conn.close()


def call(client: Client, path: str, body: bytes, tally: Tally, versions: bool) -> None:
    t0 = time.perf_counter()
    status, answer = client.post(path, body)
    tally.latencies.append(time.perf_counter() - t0)
    if status != 200:
        tally.errors += 1
        if len(tally.error_samples) < 5:
            tally.error_samples.append(f"{status}: {answer[:300].decode(errors='replace')}")
        return
    tally.ok += 1
    if versions and (found := VERSION_IN_ANSWER.search(answer)):
        version = found.group(1).decode()
        if not tally.changes or tally.changes[-1][1] != version:
            tally.changes.append((time.perf_counter(), version))
        tally.versions[version] += 1


@dataclass(frozen=True)
class Route:
    key: str
    system: str  # "mlflow" | "ours"
    label: str
    logging: bool | None
    port: int
    path: str
    single: list[bytes]
    batch: list[bytes]
    pgid: int


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group (a server and its workers)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


@dataclass
class Meter:
    """Wall, this client's CPU, and the CPU of the server's and the registry's process groups."""

    groups: dict[str, int]
    wall: float = 0.0
    client: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> Meter:
        self.cpu = {k: group_cpu(g) for k, g in self.groups.items()}
        self.client, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.client = time.process_time() - self.client
        self.cpu = {k: group_cpu(g) - self.cpu[k] for k, g in self.groups.items()}

    def figures(self, requests: int) -> dict[str, Any]:
        n = max(requests, 1)
        out: dict[str, Any] = {
            "wall_s": round(self.wall, 2),
            "client_cpu_s": round(self.client, 2),
            "client_cpu_share": round(self.client / self.wall, 2),
            "client_cpu_us_per_request": round(1e6 * self.client / n, 1),
        }
        for k, v in self.cpu.items():
            out[f"{k}_cpu_share"] = round(v / self.wall, 2)
            out[f"{k}_cpu_ms_per_request"] = round(1000 * v / n, 3)
        return out


def summary_of(tally: Tally) -> dict[str, Any]:
    lat = tally.latencies
    return {
        "requests": tally.ok + tally.errors,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "p50_ms": round(percentile(lat, 50), 3) if lat else None,
        "p99_ms": round(percentile(lat, 99), 3) if lat else None,
        "mean_ms": round(1000 * sum(lat) / len(lat), 3) if lat else None,
    }


def sequential(route: Route, bodies_: list[bytes], n: int, groups: dict[str, int]) -> dict[str, Any]:
    """n requests one after the other on one keep-alive connection, after n // 10 (>= 20) warm-ups."""
    client, tally = Client(route.port), Tally()
    try:
        for i in range(max(20, n // 10)):
            call(client, route.path, bodies_[i % len(bodies_)], Tally(), False)
        with Meter(groups) as meter:
            for i in range(n):
                call(client, route.path, bodies_[i % len(bodies_)], tally, False)
    finally:
        client.close()
    return {**summary_of(tally), **meter.figures(n)}


class Load:
    """`clients` threads, each on its own connection, sending single rows until stopped."""

    def __init__(self, clients: list[tuple[int, str]], bodies_: list[bytes], versions: bool = False) -> None:
        self.stop = threading.Event()
        self.started = threading.Barrier(len(clients) + 1)
        self.tallies = [Tally() for _ in clients]
        self.threads = [
            threading.Thread(target=self._run, args=(port, path, bodies_, tally, i, versions), daemon=True)
            for i, ((port, path), tally) in enumerate(zip(clients, self.tallies, strict=True))
        ]

    def _run(
        self, port: int, path: str, bodies_: list[bytes], tally: Tally, offset: int, versions: bool
    ) -> None:
        client, i = Client(port), offset * 31
        try:
            call(client, path, bodies_[i % len(bodies_)], Tally(), False)  # connected before the start
            self.started.wait()
            while not self.stop.is_set():
                i += 1
                call(client, path, bodies_[i % len(bodies_)], tally, versions)
        finally:
            client.close()

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        self.started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def total(self) -> Tally:
        out = Tally()
        for t in self.tallies:
            out.ok += t.ok
            out.errors += t.errors
            out.error_samples += t.error_samples[: 5 - len(out.error_samples)]
            out.latencies += t.latencies
            out.versions += t.versions
        return out


def throughput(route: Route, seconds: float, groups: dict[str, int]) -> dict[str, Any]:
    load = Load([(route.port, route.path)] * CLIENTS, route.single)
    with Meter(groups) as meter, load:
        time.sleep(seconds)  # the measured duration, not a wait for a condition
    tally = load.total()
    figures = summary_of(tally)
    return {
        "clients": CLIENTS,
        "requests_per_s": round(tally.ok / meter.wall, 1),
        "p50_under_load_ms": figures.pop("p50_ms"),
        "p99_under_load_ms": figures.pop("p99_ms"),
        **figures,
        **meter.figures(tally.ok + tally.errors),
    }


# ---------------------------------------------------------------------------------------------
# alias swaps under load


def swaps(serving: Server, registry: RegistryClient, single: list[bytes], sizes: Sizes) -> dict[str, Any]:
    """Move `production` between versions 2 and 1 `sizes.swaps` times while 8 clients predict
    (half on each deployment); each swap is given `dwell` seconds of load after it shows."""
    targets = [(serving.port, f"/api/deployments/{NOLOG if i % 2 else LOG}/predict") for i in range(CLIENTS)]
    events: list[dict[str, Any]] = []
    load = Load(targets, single, versions=True)
    with load:
        time.sleep(sizes.dwell)
        for i in range(sizes.swaps):
            to = "2" if i % 2 == 0 else "1"
            t0 = time.perf_counter()
            registry.set_alias(MODEL, "production", to)
            for name in (NOLOG, LOG):
                wait_loaded(serving.uri, name, to, 120)
            events.append({"swap": i + 1, "to": to, "t0": t0, "status_s": round(time.perf_counter() - t0, 3)})
            time.sleep(sizes.dwell)  # serve the new version under load before moving again
    tally = load.total()
    first_answers(events, [t.changes for t in load.tallies])
    figures = summary_of(tally)
    return {
        "swaps": sizes.swaps,
        "clients": CLIENTS,
        "answers_by_version": dict(tally.versions),
        "both_versions_answered": {"1", "2"} <= set(tally.versions),
        "non_200": tally.errors,
        "requests": figures["requests"],
        "error_samples": figures["error_samples"],
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "events": [{k: v for k, v in e.items() if k != "t0"} for e in events],
    }


def first_answers(events: list[dict[str, Any]], changes: list[list[tuple[float, str]]]) -> None:
    """Each swap's delay until the first answer from the new version (over all client threads)."""
    seen = sorted(c for thread in changes for c in thread)
    for i, event in enumerate(events):
        end = events[i + 1]["t0"] if i + 1 < len(events) else float("inf")
        hits = [t for t, v in seen if v == event["to"] and event["t0"] <= t < end]
        event["first_answer_s"] = round(min(hits) - event["t0"], 3) if hits else None


# ---------------------------------------------------------------------------------------------
# the prediction log, py-spy


def log_state(serving: Server, timeout: float) -> dict[str, Any]:
    """The prediction log's queue drained (or not within timeout), its drops, the rows predicted."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(f"{serving.uri}/metrics", timeout=5).text
        depth = metric(text, "mlops_serving_queue_depth", 'queue="prediction_log"')
        if depth == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    predicted = {
        name: metric(text, "mlops_serving_predictions_total", f'deployment="{name}"') for name in (NOLOG, LOG)
    }
    return {
        "queue_depth": depth,
        "dropped": metric(text, "mlops_serving_dropped", 'queue="prediction_log"'),
        "rows_predicted": predicted,
    }


def metric(text: str, name: str, label: str) -> float:
    """The sum of a Prometheus family's samples whose labels hold `label`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label in line and not line.startswith("#"):
            head = line.split("{", 1)[0]
            if head in (name, f"{name}_total"):
                total += float(line.rsplit(" ", 1)[1])
    return total


OWN = ("model_serving/", "mlops_kit/")
WORK = (  # a stack holding one of these is that work's time (first match)
    ("prediction log: rows queued, encoded, sent to the registry", ("mlops_client/monitoring",)),
    ("model: the forest's trees (model_serving.loading, numpy)", ("model_serving/loading/",)),
    ("body decoding (model_serving.protocols)", ("model_serving/protocols/",)),
    (
        "serving's own code, other (predict route and service, runtime)",
        ("model_serving/predict/", "model_serving/runtime/", "model_serving/deployments/"),
    ),
)
LEAF = (  # the rest, by the function running
    ("platform middleware and metrics (mlops_kit, prometheus_client)", ("mlops_kit/", "prometheus_client/")),
    (
        "HTTP server, framework, event loop (uvicorn, starlette, fastapi, asyncio)",
        ("uvicorn/", "starlette/", "fastapi/", "asyncio/", "anyio/", "h11/", "httptools", "pydantic"),
    ),
)
ENTRY = ("__main__", "serve (mlops_kit/app.py)")  # on every stack: says nothing
LINE_NO = re.compile(r":\d+\)$")


def area_of(stack: str, leaf: str) -> str:
    for label, marks in WORK:
        if any(m in stack for m in marks):
            return label
    return next((label for label, marks in LEAF if any(m in leaf for m in marks)), "other")


def summarize_profile(raw: str, top: int = 20) -> dict[str, Any]:
    """Shares of the samples: by area (WORK on the whole stack, else LEAF on the running function),
    by function of our own code (inclusive), and by leaf function (self)."""
    total = 0
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), [LINE_NO.sub(")", f) for f in stack.split(";")]
        total += n
        leaf[frames[-1]] += n
        areas[area_of(stack, frames[-1])] += n
        for frame in {f for f in frames if any(o in f for o in OWN) and not any(e in f for e in ENTRY)}:
            inclusive[frame] += n

    def share(counter: collections.Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"frame": f, "percent": round(100 * n / total, 1)} for f, n in counter.most_common(k)]

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "areas": {k: round(100 * n / total, 1) for k, n in areas.most_common()},
        "own_code_inclusive": share(inclusive, top),
        "self": share(leaf, top),
    }


def profile(
    py_spy: str, route: Route, seconds: float, groups: dict[str, int], folder: Path
) -> dict[str, Any]:
    print(f"py-spy on the serving process: {route.label}, {seconds:g} s", flush=True)
    spy = PySpy(py_spy, route.pgid, folder / "serving.raw", rate=250)
    try:
        figures = throughput(route, seconds, groups)
    finally:
        summary = spy.finish(summarize_profile)
    return {"route": route.key, "requests_per_s_while_profiled": figures["requests_per_s"], **summary}


# ---------------------------------------------------------------------------------------------
# the run


def routes(mlflow: Server, serving: Server, b: dict[str, list[bytes]]) -> list[Route]:
    assert mlflow.proc is not None and serving.proc is not None
    m, s = (mlflow.port, mlflow.proc.pid), (serving.port, serving.proc.pid)
    split, inst = (b["split_single"], b["split_batch"]), (b["instances_single"], b["instances_batch"])
    return [
        Route(
            "mlflow",
            "mlflow",
            "MLflow `/invocations` (dataframe_split)",
            None,
            m[0],
            "/invocations",
            *split,
            m[1],
        ),
        Route(
            "ours_predict_nolog",
            "ours",
            "ours `/api/deployments/{name}/predict` (instances)",
            False,
            s[0],
            f"/api/deployments/{NOLOG}/predict",
            *inst,
            s[1],
        ),
        Route(
            "ours_predict_log",
            "ours",
            "ours `/api/deployments/{name}/predict` (instances)",
            True,
            s[0],
            f"/api/deployments/{LOG}/predict",
            *inst,
            s[1],
        ),
        Route(
            "ours_invocations_nolog",
            "ours",
            "ours `/api/deployments/{name}/invocations` (dataframe_split)",
            False,
            s[0],
            f"/api/deployments/{NOLOG}/invocations",
            *split,
            s[1],
        ),
        Route(
            "ours_invocations_log",
            "ours",
            "ours `/invocations` (dataframe_split)",
            True,
            s[0],
            "/invocations",
            *split,
            s[1],
        ),
    ]


def same_predictions(rs: list[Route]) -> dict[str, Any]:
    """The first batch through MLflow and through our MLflow route: the same 100 predictions?"""
    answers = {}
    for r in (rs[0], rs[3]):
        client = Client(r.port)
        status, body = client.post(r.path, r.batch[0])
        client.close()
        if status != 200:
            raise RuntimeError(f"{r.key} answered {status}: {body[:500]!r}")
        answers[r.key] = orjson.loads(body)["predictions"]
    mlflow_p, ours_p = answers[rs[0].key], answers[rs[3].key]
    return {
        "rows": len(mlflow_p),
        "equal": mlflow_p == ours_p,
        "mlflow_first": mlflow_p[:5],
        "ours_first": ours_p[:5],
    }


def measure(rs: list[Route], sizes: Sizes, groups_of: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    """Each figure for every route in turn (so a busy spell of the shared machine hits one figure
    of all routes rather than all figures of one), with the machine state before and after."""
    out: dict[str, dict[str, Any]] = {r.key: {} for r in rs}
    for kind in ("single", "batch", "throughput"):
        for r in rs:
            print(f"{kind}: {r.key}", flush=True)
            before, groups = machine_state(), groups_of[r.system]
            if kind == "single":
                fig = sequential(r, r.single, sizes.single, groups)
            elif kind == "batch":
                fig = sequential(r, r.batch, sizes.batch, groups)
            else:
                fig = throughput(r, sizes.seconds, groups)
            out[r.key][kind] = {**fig, "machine_before": before, "machine_after": machine_state()}
    return out


def summary(results: dict[str, Any]) -> dict[str, Any]:
    figs = results["figures"]
    base = figs["mlflow"]["throughput"]["requests_per_s"]
    ratios = {k: round(v["throughput"]["requests_per_s"] / base, 2) for k, v in figs.items() if k != "mlflow"}
    logged = ("ours_predict_log", "ours_invocations_log")
    sw = results["swaps"]
    return {
        "mlflow_requests_per_s": base,
        "ratios": ratios,
        "ratio_target_met": {k: r >= TARGET_RATIO for k, r in ratios.items()},
        "p99_logging_on_ms": {k: figs[k]["single"]["p99_ms"] for k in logged},
        "p99_target_met": {k: figs[k]["single"]["p99_ms"] < TARGET_P99_MS for k in logged},
        "swap_target_met": sw["non_200"] == 0
        and sw["both_versions_answered"]
        and sw["swaps"] >= TARGET_SWAPS,
        "swap_errors": sw["non_200"],
        "errors_total": sum(f[k]["errors"] for f in figs.values() for k in ("single", "batch", "throughput")),
    }


def missed(s: dict[str, Any]) -> bool:
    return not (
        all(s["ratio_target_met"].values()) and all(s["p99_target_met"].values()) and s["swap_errors"] == 0
    )


# ---------------------------------------------------------------------------------------------
# output


def render(results: dict[str, Any]) -> str:
    cfg = results["config"]
    title = "# Model serving benchmark: ours vs `mlflow models serve`"
    lines = [
        title + (" (--quick smoke run)" if cfg["quick"] else ""),
        "",
        *setup_lines(results),
        "",
        f"| system, route (body) | prediction log | single row p50 / p99 (ms) "
        f"| batch of {BATCH} p50 / p99 (ms) | req/s, {CLIENTS} clients | x MLflow "
        "| p50 / p99 under load (ms) | errors | server CPU ms / req | client CPU (share of a core) "
        "| cpu cal. (throughput) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[figure_row(key, f, results["summary"]) for key, f in results["figures"].items()],
        "",
        *client_note(results["figures"]),
        "",
        *targets(results),
        "",
        *swap_lines(results["swaps"]),
        "",
        *log_lines(results),
    ]
    if results.get("profile"):
        lines += ["", *profile_lines(results["profile"])]
    return "\n".join(lines) + "\n"


def setup_lines(results: dict[str, Any]) -> list[str]:
    cfg, mv, ours, same = (
        results["config"],
        results["config"]["mlflow_venv"],
        results["ours"],
        results["same_predictions"],
    )
    changed = results["source"]["service_files_changed"]
    sizes = cfg["sizes"]
    return [
        f"{results['started']} on {cfg['machine']}, {cfg['cores']} cores (shared), Python {cfg['python']}, "
        f"commit {str(results['source'].get('commit'))[:10]}"
        + (f" (service files changed: {len(changed)})" if changed else "")
        + "; cpu calibration (a fixed pure-Python loop: larger means a slower or busier machine) "
        "before / after each figure, with the 1-minute load average: the machine is shared, so read "
        "the figures with it.",
        "",
        f"Model: RandomForestClassifier, {N_TREES} trees, {N_FEATURES} features, fitted on {N_ROWS:,} "
        f"rows (`make_classification`, seed {cfg['seed']}; scikit-learn {cfg['sklearn']}), saved once "
        "with `mlflow.sklearn.save_model` (MLflow's default skops format); both servers read that "
        "directory.",
        "",
        f"- **MLflow {mv['mlflow']}** (own venv `.bench/mlflow-venv`: scikit-learn {mv['scikit-learn']}, "
        f"pandas {mv['pandas']}, numpy {mv['numpy']}, uvicorn {mv['uvicorn']}, Python {mv['python']}): "
        f"`mlflow models serve --env-manager local --workers 1`, ready after "
        f"{results['mlflow']['start_s']} s; its access log is on, as by default.",
        f"- **Ours**: one `python -m model_serving` process (one uvicorn worker, ready after "
        f"{ours['start_s']} s) and a model registry process (SQLite); the directory registered as "
        f'version 1, `production` on it; deployments `{NOLOG}` (`"monitoring": false`) and `{LOG}` '
        "(monitoring on: each prediction queued for the registry's prediction log, sent in background "
        f"batches); both loaded {ours['deploy']['deploy_to_loaded_s']} s after being created (flavor "
        f"`{ours['deploy']['loaded'][LOG]['flavor']}`).",
        "- Client (the same code for every route): an `http.client` keep-alive connection per thread, "
        f"bodies encoded beforehand, answers not decoded. Single row: {sizes['single']:,} sequential "
        f"requests after a warm-up; batch of {BATCH}: {sizes['batch']:,}; throughput: single rows from "
        f"{CLIENTS} threads for {sizes['seconds']:g} s. `OMP/OPENBLAS/MKL_NUM_THREADS=1` for both servers.",
        "- Same answers: MLflow and our `/invocations` gave "
        f"{'the same' if same['equal'] else '**different**'} predictions for the first batch of "
        f"{same['rows']} rows.",
    ]


def figure_row(key: str, f: dict[str, Any], s: dict[str, Any]) -> str:
    one, many, tp = f["single"], f["batch"], f["throughput"]
    ratio = "1" if key == "mlflow" else f"{s['ratios'][key]:.2f}"
    log = "-" if f["logging"] is None else "on" if f["logging"] else "off"
    errors = one["errors"] + many["errors"] + tp["errors"]
    return (
        f"| {f['label']} | {log} | {fmt(one['p50_ms'])} / {fmt(one['p99_ms'])} "
        f"| {fmt(many['p50_ms'])} / {fmt(many['p99_ms'])} | {fmt(tp['requests_per_s'], 0)} | {ratio} "
        f"| {fmt(tp['p50_under_load_ms'])} / {fmt(tp['p99_under_load_ms'])} | {errors} "
        f"| {fmt(tp['server_cpu_ms_per_request'], 3)} | {fmt(tp['client_cpu_share'])} | {cal(tp)} |"
    )


def client_note(figs: dict[str, Any]) -> list[str]:
    share = [f["throughput"]["client_cpu_share"] for f in figs.values()]
    per_request = [f["throughput"]["client_cpu_us_per_request"] for f in figs.values()]
    registry = [fmt(f["throughput"].get("registry_cpu_share")) for f in figs.values() if f["logging"]]
    return [
        f"The client used {min(share):.2f}-{max(share):.2f} of a core during the throughput runs "
        f"({min(per_request):.0f}-{max(per_request):.0f} µs of CPU per request); the machine has 2 "
        "cores, so the client and the server share them. Server CPU per request is the process "
        "group's CPU (user + system) over the run divided by the requests. With logging on, the "
        f"registry took {', '.join(registry)} of a core storing the logged predictions (not counted "
        "above).",
    ]


def targets(results: dict[str, Any]) -> list[str]:
    s, figs, sw = results["summary"], results["figures"], results["swaps"]
    lines = ["| target (issue 14) | figure | verdict |", "| --- | --- | --- |"]
    for key, ratio in s["ratios"].items():
        log = "on" if figs[key]["logging"] else "off"
        lines.append(
            f"| ≥ {TARGET_RATIO:g}x MLflow's throughput: {figs[key]['label']}, log {log} "
            f"| {ratio:.2f}x | {verdict(s['ratio_target_met'][key])} |"
        )
    for key, p99 in s["p99_logging_on_ms"].items():
        lines.append(
            f"| single-row p99 < {TARGET_P99_MS:g} ms with logging on: {figs[key]['label']} "
            f"| {fmt(p99)} ms | {verdict(s['p99_target_met'][key])} |"
        )
    swap_verdict = verdict(s["swap_target_met"])
    if sw["swaps"] < TARGET_SWAPS:  # a --quick run: fewer swaps than the target counts
        swap_verdict = f"{verdict(sw['non_200'] == 0)} (only {sw['swaps']} swaps)"
    lines.append(
        f"| 0 errors during {TARGET_SWAPS} alias swaps under load | {sw['non_200']} non-200 of "
        f"{sw['requests']:,} requests in {sw['swaps']} swaps | {swap_verdict} |"
    )
    return lines


def swap_lines(sw: dict[str, Any]) -> list[str]:
    both = "yes" if sw["both_versions_answered"] else "**no**"
    lines = [
        f"**Alias swaps**: `production` moved {sw['swaps']} times between versions 2 (a second forest, "
        f"another seed) and 1 while {sw['clients']} clients sent single rows (half to each deployment, "
        f"both following `production`): {sw['non_200']} non-200 answers of {sw['requests']:,}; answers "
        f"by version {sw['answers_by_version']} (both answered: {both}); latency over the phase p50 "
        f"{fmt(sw['p50_ms'])} ms, p99 {fmt(sw['p99_ms'])} ms. Serving asks the registry once a second "
        "whether an alias moved (`MLOPS_MODEL_SERVING_WATCH_SECONDS`, default 1), then downloads the "
        "version, loads and warms it beside the old one and switches.",
        "",
        "| swap | to version | both deployments' status shows it after (s) "
        "| first answer from it after (s) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {e['swap']} | {e['to']} | {e['status_s']} | {fmt(e['first_answer_s'], 3)} |" for e in sw["events"]
    ]
    if sw["error_samples"]:
        lines += ["", "Errors seen: " + "; ".join(f"`{x}`" for x in sw["error_samples"])]
    return lines


def log_lines(results: dict[str, Any]) -> list[str]:
    log = results["prediction_log"]
    rows = {k: fmt(int(v)) for k, v in log["rows_predicted"].items()}
    queue = "drained" if log["queue_depth"] == 0 else f"still held {fmt(int(log['queue_depth']))}"
    return [
        f"**Prediction log**: rows predicted by `{LOG}` (logging on) {rows[LOG]}, by `{NOLOG}` "
        f"{rows[NOLOG]}; the queue {queue} at the end, {fmt(int(log['dropped']))} dropped (a full "
        "queue drops rather than blocks).",
    ]


def profile_lines(p: dict[str, Any]) -> list[str]:
    if not p.get("samples"):
        return [f"py-spy gave nothing: {p.get('error', '?')}"]
    lines = [
        f"**Where the serving process's time goes** (py-spy, {p['samples']:,} samples of active threads, "
        f"route `{p['route']}` at {fmt(p['requests_per_s_while_profiled'], 0)} req/s while profiled):",
        "",
        "| area | share |",
        "| --- | --- |",
        *[f"| {k} | {v} % |" for k, v in p["areas"].items()],
        "",
        "| own code, inclusive | share | | leaf function (self) | share |",
        "| --- | --- | --- | --- | --- |",
    ]
    own, leaf = p["own_code_inclusive"][:15], p["self"][:15]
    for i in range(max(len(own), len(leaf))):
        a = own[i] if i < len(own) else {"frame": "", "percent": ""}
        b = leaf[i] if i < len(leaf) else {"frame": "", "percent": ""}
        lines.append(f"| `{a['frame']}` | {a['percent']} | | `{b['frame']}` | {b['percent']} |")
    return lines


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, sizes: Sizes, folder: Path) -> dict[str, Any]:
    venv, install = ensure_mlflow_venv(args.cache_dir)
    t0 = time.perf_counter()
    model, frame = train(args.seed)
    second, _ = train(args.seed + 1)
    model_dir = save(model, frame, folder / "model-v1")
    v2_dir = save(second, frame, folder / "model-v2")
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": {
            "quick": args.quick,
            "seed": args.seed,
            "sizes": sizes.__dict__,
            "machine": platform.machine(),
            "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "mlflow_venv": install,
            "train_and_save_s": round(time.perf_counter() - t0, 1),
        },
        "source": source_state(ROOT, "services/model_serving/src"),
    }
    b = bodies(frame, args.seed)
    with contextlib.ExitStack() as stack:
        mlflow, results["mlflow"] = start(stack, lambda: start_mlflow(venv, model_dir, folder))
        registry_server = start_registry(folder)
        stack.callback(registry_server.stop)
        serving, ours = start(stack, lambda: start_serving(folder, registry_server.uri))
        registry = stack.enter_context(RegistryClient(registry_server.uri))
        ours["deploy"] = deploy(serving, registry, model_dir)
        results["ours"] = ours
        rs = routes(mlflow, serving, b)
        results["same_predictions"] = same_predictions(rs)
        assert mlflow.proc and serving.proc and registry_server.proc
        groups = {
            "mlflow": {"server": mlflow.proc.pid},
            "ours": {"server": serving.proc.pid, "registry": registry_server.proc.pid},
        }
        figs = measure(rs, sizes, groups)
        results["figures"] = {
            r.key: {"label": r.label, "path": r.path, "logging": r.logging, **figs[r.key]} for r in rs
        }
        registry.register_model(MODEL, framework="sklearn", path=v2_dir)
        print(f"{sizes.swaps} alias swaps under load", flush=True)
        results["swaps"] = swaps(serving, registry, b["instances_single"], sizes)
        results["prediction_log"] = log_state(serving, 60)
        results["summary"] = summary(results)
        if args.profile_all or missed(results["summary"]):
            py_spy = args.py_spy or shutil.which("py-spy")
            if py_spy:
                results["profile"] = profile(py_spy, rs[2], sizes.profile_seconds, groups["ours"], folder)
            else:
                results["profile"] = {"samples": 0, "error": "py-spy not found (pip install py-spy)"}
    return results


def start(stack: contextlib.ExitStack, starter: Any) -> tuple[Server, dict[str, Any]]:
    server, seconds = starter()
    stack.callback(server.stop)
    return server, {"start_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes; print only (unless --write)")
    parser.add_argument("--write", action="store_true", help="with --quick: write the results files anyway")
    parser.add_argument("--seconds", type=float, help="each throughput run (default 20; quick 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--profile-all", action="store_true", help="py-spy the serving process even if every target is met"
    )
    parser.add_argument("--py-spy", help="path of py-spy (default: the one on PATH)")
    parser.add_argument(
        "--keep", type=Path, help="keep the servers' logs and py-spy's raw stacks in this folder"
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench", help="where MLflow's venv lives")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.seconds:
        sizes = Sizes(**{**sizes.__dict__, "seconds": args.seconds})
    with folder_for(args.keep) as folder:
        results = run(args, sizes, folder)
    markdown = render(results)
    print(markdown)
    if not args.quick or args.write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "serving.json").write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "serving.md").write_text(markdown)
        print(f"wrote {RESULTS / 'serving.md'} and serving.json", file=sys.stderr)


@contextlib.contextmanager
def folder_for(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for old in ("registry", "serving"):  # an earlier run's data: a fresh registry and serving
            shutil.rmtree(keep / old, ignore_errors=True)
        (keep / "registry.db").unlink(missing_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    main()
