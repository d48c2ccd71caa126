"""Experiment tracking benchmark: the same `mlflow`-client script against `mlflow server` and our service.

Starts `mlflow server` (SQLite backend, one worker, from its own virtual environment under
`--cache-dir`, created on first use with the same mlflow version as the client here) and
`python -m experiment_tracking` (SQLite under a temporary MLOPS_DATA_DIR), one after the other,
each on a free loopback port, and drives each through the unmodified `mlflow.MlflowClient` of
this environment. Writes every figure for both servers and the ratio MLflow/ours to
scripts/bench/results/tracking.json and tracking.md.

    uv run python scripts/bench/tracking_bench.py [--runs 500] [--history-points 100000] \\
        [--search-runs 10000] [--mlflow-search-runs N] [--populate-threads 4] \\
        [--only both|ours|mlflow] [--mlflow-version X.Y.Z]

A third, stub server (answers at once with canned JSON) gives the client's own cost: the floor
no server can beat through this client.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import benchkit
from benchkit import Server, cpu_calibration, free_port, percentile

# client behaviour, set before mlflow reads it: no telemetry to the outside, and fail fast instead
# of retrying a 5xx with exponential back-off (which would turn one server error into minutes)
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "300"
# set_terminated would otherwise GET the run again to print "View run ... at" on stdout
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
os.environ.pop("MLFLOW_TRACKING_URI", None)

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.utils import rest_utils

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"

SEARCH_FILTER = "metrics.m0 > 0.5 and params.p0 = 'v0'"
SEARCH_ORDER = ["metrics.m1 DESC"]
SEARCH_TOP = 100
LOG_METRIC_CALLS = 200
LOG_METRIC_WARMUP = 10
BATCH_SIZE = 1000
BATCH_REPEATS = 5
SEARCH_ALL_REPEATS = 10
SEARCH_FILTERED_REPEATS = 20
HISTORY_REPEATS = 5
BIG_SEARCH_REPEATS = 50
POPULATE_THREADS = 4
RATIO_TARGET = 10.0


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(max(samples) * 1000, 3),
        "total_s": round(sum(samples), 3),
    }


# ---------------------------------------------------------------------------------------------
# the client side: every HTTP call the mlflow client makes goes through rest_utils.http_request


class ApiLog:
    """Counts the client's HTTP calls and keeps the failed ones (endpoint, request body, status, answer).

    The only change to the client's behaviour: a 5xx comes back as a response (raise_on_status=False)
    so that its body reaches the report, instead of a bare urllib3 retry error. Both servers alike.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failures: list[dict[str, Any]] = []
        self.http_s = 0.0  # time inside http_request: request out, server, answer read (not parsed)
        self._original = rest_utils.http_request

    def install(self) -> None:
        original = self._original

        def http_request(host_creds: Any, endpoint: str, method: str, **kwargs: Any) -> Any:
            self.calls[f"{method} {endpoint}"] += 1
            kwargs.setdefault("raise_on_status", False)
            t0 = time.perf_counter()
            try:
                response = original(host_creds, endpoint, method, **kwargs)
            except Exception as exc:
                self._record(method, endpoint, kwargs, None, f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self.http_s += time.perf_counter() - t0
            if response.status_code >= 400:
                self._record(method, endpoint, kwargs, response.status_code, response.text)
            return response

        rest_utils.http_request = http_request

    def uninstall(self) -> None:
        rest_utils.http_request = self._original

    def _record(
        self, method: str, endpoint: str, kwargs: dict[str, Any], status: int | None, text: str
    ) -> None:
        body = kwargs.get("json", kwargs.get("params"))
        request = json.dumps(body)
        if len(request) > 1500:
            request = request[:1500] + f"... ({len(request)} chars)"
        self.failures.append(
            {
                "request": f"{method} {endpoint}",
                "body": request,
                "status": status,
                "response": text[:1500],
            }
        )


class Steps:
    """Runs the scenario's steps, keeping each one's figures or error (a failure doesn't stop the rest)."""

    def __init__(self, api: ApiLog):
        self.api = api
        self.results: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> bool:
        calls_before = sum(self.api.calls.values())
        failures_before = len(self.api.failures)
        started = time.perf_counter()
        try:
            figures = fn()
        except Exception as exc:
            self.errors.append(
                {
                    "step": name,
                    "error": f"{type(exc).__name__}: {exc}"[:3000],
                    "where": traceback.format_exc(limit=4)[-1500:],
                    "failed_requests": self.api.failures[failures_before:][:5],
                }
            )
            print(f"  {name}: FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            return False
        figures["http_calls"] = sum(self.api.calls.values()) - calls_before
        self.results[name] = figures
        print(f"  {name}: done in {time.perf_counter() - started:.1f} s", flush=True)
        return True


def run_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """The params and metrics of n runs: p0 alternates v0/v1, m0..m9 uniform in [0, 1)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        params = {f"p{k}": f"v{i % 2}" if k == 0 else f"v{(i * (k + 1)) % 7}" for k in range(10)}
        metrics = {f"m{k}": rng.random() for k in range(10)}
        rows.append({"params": params, "metrics": metrics})
    return rows


def expected_top(rows: list[dict[str, Any]]) -> list[float]:
    matching = [r["metrics"]["m1"] for r in rows if r["metrics"]["m0"] > 0.5 and r["params"]["p0"] == "v0"]
    return sorted(matching, reverse=True)[:SEARCH_TOP]


def populate_run(client: MlflowClient, experiment_id: str, index: int, row: dict[str, Any]) -> None:
    """One run = 3 requests: create_run, one log_batch with its 10 params + 10 metrics, set_terminated."""
    run = client.create_run(experiment_id, run_name=f"run-{index}")
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, now, 0) for k, v in row["metrics"].items()],
        params=[Param(k, v) for k, v in row["params"].items()],
    )
    client.set_terminated(run.info.run_id)


def populate_parallel(
    client: MlflowClient, experiment_id: str, rows: list[dict[str, Any]], threads: int
) -> None:
    pool = ThreadPoolExecutor(threads)
    try:
        for future in [
            pool.submit(populate_run, client, experiment_id, i, row) for i, row in enumerate(rows)
        ]:
            future.result()
    finally:
        # on an error or an interrupt, drop the queued runs instead of waiting for all of them
        pool.shutdown(wait=True, cancel_futures=True)


def search_all(client: MlflowClient, experiment_id: str) -> list[Any]:
    """Every run of the experiment, paging with max_results=1000 until there is no next page token."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def search_top(client: MlflowClient, experiment_id: str) -> list[Any]:
    return list(
        client.search_runs(
            [experiment_id], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER, max_results=SEARCH_TOP
        )
    )


def check_top(found: list[Any], expected: list[float]) -> None:
    got = [run.data.metrics.get("m1") for run in found]
    if len(got) != len(expected) or not all(
        g is not None and math.isclose(g, e, rel_tol=1e-12) for g, e in zip(got, expected, strict=True)
    ):
        raise AssertionError(
            f"filtered search returned {len(got)} runs, m1 {got[:5]}...; expected {len(expected)}, "
            f"m1 {expected[:5]}..."
        )


def timed(api: ApiLog, fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall time of each call, and the part of it spent in HTTP round trips (the rest is the client's)."""
    samples, http, result = [], [], None
    for _ in range(repeats):
        h0 = api.http_s
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
        http.append(api.http_s - h0)
    return samples, http, result


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def scenario(
    tracking_uri: str,
    runs: int = 500,
    history_points: int = 100_000,
    search_runs: int = 0,
    populate_threads: int = POPULATE_THREADS,
) -> dict:
    """The client script both servers get. Returns each step's figures and the errors met."""
    api = ApiLog()
    api.install()
    try:
        return _scenario(tracking_uri, runs, history_points, search_runs, populate_threads, api)
    finally:
        api.uninstall()


def _scenario(
    tracking_uri: str, runs: int, history_points: int, search_runs: int, populate_threads: int, api: ApiLog
) -> dict:
    client = MlflowClient(tracking_uri)
    steps = Steps(api)
    tag = uuid.uuid4().hex[:8]
    ids: dict[str, str] = {}

    def setup() -> dict[str, Any]:
        ids["log"] = client.create_experiment(f"bench-logging-{tag}")
        ids["search"] = client.create_experiment(f"bench-search-{tag}")
        run = client.create_run(ids["log"], run_name="warmup")
        client.get_run(run.info.run_id)
        client.get_experiment(ids["log"])
        return {"what": "create 2 experiments, create_run, get_run, get_experiment (connection warm-up)"}

    def log_metric() -> dict[str, Any]:
        run_id = client.create_run(ids["log"], run_name="log-metric").info.run_id
        for i in range(LOG_METRIC_WARMUP):
            client.log_metric(run_id, "warmup", float(i), step=i)
        steps = iter(range(LOG_METRIC_CALLS))

        def one() -> None:
            i = next(steps)
            client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)

        samples, http, _ = timed(api, one, LOG_METRIC_CALLS)
        logged = client.get_metric_history(run_id, "loss")
        if len(logged) != LOG_METRIC_CALLS:
            raise AssertionError(
                f"history has {len(logged)} points after {LOG_METRIC_CALLS} log_metric calls"
            )
        return {
            "what": f"{LOG_METRIC_CALLS} sequential MlflowClient.log_metric(run_id, 'loss', value, step=i) "
            f"on one run, each timed ({LOG_METRIC_WARMUP} untimed warm-up calls first)",
            **summary(samples),
            "http_p50_ms": round(percentile(http, 50), 3),
        }

    def log_batch() -> dict[str, Any]:
        samples, http = [], []
        for r in range(BATCH_REPEATS):
            run_id = client.create_run(ids["log"], run_name=f"log-batch-{r}").info.run_id
            now = int(time.time() * 1000)
            metrics = [Metric(f"batch_{j % 10}", j / BATCH_SIZE, now + j, j // 10) for j in range(BATCH_SIZE)]
            one, one_http, _ = timed(api, lambda: client.log_batch(run_id, metrics=metrics), 1)  # noqa: B023
            samples += one
            http += one_http
        return {
            "what": f"MlflowClient.log_batch of {BATCH_SIZE} metrics (10 keys x 100 steps) on a fresh run, "
            f"{BATCH_REPEATS} times; median",
            "median_ms": median_ms(samples),
            "http_median_ms": median_ms(http),
            "samples_ms": [round(s * 1000, 3) for s in samples],
        }

    rows = run_rows(runs, seed=42)

    def populate() -> dict[str, Any]:
        samples = []
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            t1 = time.perf_counter()
            populate_run(client, ids["search"], i, row)
            samples.append(time.perf_counter() - t1)
        total = time.perf_counter() - t0
        return {
            "what": f"{runs} runs, sequentially, each: create_run(run_name) + one log_batch with 10 params "
            "+ 10 metrics + set_terminated (3 requests per run)",
            "runs": runs,
            "total_s": round(total, 3),
            "per_run": summary(samples),
        }

    def search_everything() -> dict[str, Any]:
        samples, http, found = timed(api, lambda: search_all(client, ids["search"]), SEARCH_ALL_REPEATS)
        if len(found) != runs:
            raise AssertionError(f"search_runs returned {len(found)} runs, expected {runs}")
        sample = found[0].data
        if len(sample.params) != 10 or len(sample.metrics) != 10:
            raise AssertionError(
                f"a run came back with {len(sample.params)} params, {len(sample.metrics)} metrics"
            )
        return {
            "what": f"search_runs over the {runs}-run experiment, no filter, max_results=1000, following "
            f"page tokens to the end; {SEARCH_ALL_REPEATS} times, median",
            "median_ms": median_ms(samples),
            "http_median_ms": median_ms(http),
            "p99_ms": round(percentile(samples, 99), 3),
            "returned": len(found),
        }

    expected = expected_top(rows)

    def search_filtered() -> dict[str, Any]:
        samples, http, found = timed(api, lambda: search_top(client, ids["search"]), SEARCH_FILTERED_REPEATS)
        check_top(found, expected)
        matching = sum(1 for r in rows if r["metrics"]["m0"] > 0.5 and r["params"]["p0"] == "v0")
        return {
            "what": f'search_runs(filter_string="{SEARCH_FILTER}", order_by={SEARCH_ORDER}, '
            f"max_results={SEARCH_TOP}) over {runs} runs; {SEARCH_FILTERED_REPEATS} times, median; "
            "result checked against the expected top runs",
            "median_ms": median_ms(samples),
            "http_median_ms": median_ms(http),
            "p99_ms": round(percentile(samples, 99), 3),
            "matching_runs": matching,
            "returned": len(found),
        }

    history: dict[str, Any] = {}

    def history_load() -> dict[str, Any]:
        run_id = client.create_run(ids["log"], run_name="history").info.run_id
        history["run_id"] = run_id
        base = int(time.time() * 1000)
        t0 = time.perf_counter()
        for start in range(0, history_points, BATCH_SIZE):
            stop = min(start + BATCH_SIZE, history_points)
            client.log_batch(
                run_id, metrics=[Metric("history", i * 1e-5, base + i, i) for i in range(start, stop)]
            )
        return {
            "what": f"{history_points} points of one key logged with log_batch in chunks of {BATCH_SIZE} "
            "(not a target, only the set-up for get_metric_history)",
            "total_s": round(time.perf_counter() - t0, 3),
        }

    def history_read() -> dict[str, Any]:
        samples, http, points = timed(
            api, lambda: client.get_metric_history(history["run_id"], "history"), HISTORY_REPEATS
        )
        if len(points) != history_points or {p.step for p in points} != set(range(history_points)):
            raise AssertionError(
                f"get_metric_history returned {len(points)} points, expected {history_points}"
            )
        return {
            "what": f"MlflowClient.get_metric_history of {history_points} points (the client pages by "
            f"25,000); {HISTORY_REPEATS} times, median",
            "median_ms": median_ms(samples),
            "http_median_ms": median_ms(http),
            "samples_ms": [round(s * 1000, 3) for s in samples],
            "points": len(points),
        }

    def big_search() -> dict[str, Any]:
        experiment_id = client.create_experiment(f"bench-search-{search_runs}-{tag}")
        big_rows = run_rows(search_runs, seed=7)
        t0 = time.perf_counter()
        populate_parallel(client, experiment_id, big_rows, populate_threads)
        populate_s = time.perf_counter() - t0
        search_top(client, experiment_id)  # warm-up
        samples, http, found = timed(api, lambda: search_top(client, experiment_id), BIG_SEARCH_REPEATS)
        check_top(found, expected_top(big_rows))
        return {
            "what": f"{search_runs} runs populated like above by {populate_threads} threads, then "
            f'search_runs(filter_string="{SEARCH_FILTER}", order_by={SEARCH_ORDER}, '
            f"max_results={SEARCH_TOP}) {BIG_SEARCH_REPEATS} times after one warm-up call; median; "
            "result checked",
            "runs": search_runs,
            "populate_s": round(populate_s, 3),
            "populate_runs_per_s": round(search_runs / populate_s, 1),
            "median_ms": median_ms(samples),
            "http_median_ms": median_ms(http),
            "p99_ms": round(percentile(samples, 99), 3),
            "matching_runs": sum(
                1 for r in big_rows if r["metrics"]["m0"] > 0.5 and r["params"]["p0"] == "v0"
            ),
        }

    if steps.run("setup", setup):
        steps.run("log_metric", log_metric)
        steps.run("log_batch_1000", log_batch)
        if steps.run("populate_runs", populate):
            steps.run("search_all", search_everything)
            steps.run("search_filtered_top100", search_filtered)
        if steps.run("history_load", history_load):
            steps.run("get_metric_history", history_read)
        if search_runs:
            steps.run("search_big", big_search)
    return {
        "steps": steps.results,
        "errors": steps.errors,
        "http_calls": dict(api.calls.most_common()),
    }


# ---------------------------------------------------------------------------------------------
# the client's own cost: the same calls against a stub that answers at once with canned JSON

STUB_SERVER = r"""
import asyncio, json, sys
from urllib.parse import parse_qs, urlsplit

port, points, runs, page = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), 25000
pages = []
for start in range(0, max(points, 1), page):
    body = {"metrics": [{"key": "history", "value": i * 1e-5, "timestamp": 1700000000000 + i, "step": i}
                        for i in range(start, min(start + page, points))]}
    if start + page < points:
        body["next_page_token"] = str(len(pages) + 1)
    pages.append(json.dumps(body).encode())

def canned_run(i):
    run_id = "%032x" % i
    return {
        "info": {"run_id": run_id, "run_uuid": run_id, "run_name": "run-%d" % i, "experiment_id": "1",
                 "user_id": "", "status": "FINISHED", "start_time": 1700000000000 + i,
                 "end_time": 1700000001000 + i, "artifact_uri": "mlflow-artifacts:/1/%s/artifacts" % run_id,
                 "lifecycle_stage": "active"},
        "data": {"metrics": [{"key": "m%d" % k, "value": 1 - i / (runs + 1) if k == 1 else 0.5 + k / 100,
                              "timestamp": 1700000000000 + i, "step": 0} for k in range(10)],
                 "params": [{"key": "p%d" % k, "value": "v%d" % (i % 7)} for k in range(10)],
                 "tags": [{"key": "mlflow.runName", "value": "run-%d" % i}]},
        "inputs": {},
    }

searches = {}

def search(body):
    wanted = min(int(json.loads(body or b"{}").get("max_results") or 1000), runs)
    if wanted not in searches:
        searches[wanted] = json.dumps({"runs": [canned_run(i) for i in range(wanted)]}).encode()
    return searches[wanted]

def answer(body):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            sizes = [int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:")]
            length = sizes[0] if sizes else 0
            body = await reader.readexactly(length) if length else b""
            target = urlsplit(lines[0].split()[1].decode())
            if target.path.endswith("/runs/search"):
                writer.write(answer(search(body)))
            elif target.path.endswith("/metrics/get-history"):
                token = parse_qs(target.query).get("page_token", ["0"])[0]
                writer.write(answer(pages[int(token or 0)]))
            else:
                writer.write(answer(b"{}"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def client_floor(tracking_uri: str, history_points: int, runs: int) -> dict[str, Any]:
    """The timed client calls against the stub: what the client (and loopback HTTP) alone costs."""
    api = ApiLog()
    api.install()
    try:
        client = MlflowClient(tracking_uri)
        run_id = "0" * 32
        for i in range(LOG_METRIC_WARMUP):
            client.log_metric(run_id, "warmup", float(i), step=i)
        log_metric, _, _ = timed(
            api, lambda: client.log_metric(run_id, "loss", 0.5, step=1), LOG_METRIC_CALLS
        )
        metrics = [
            Metric(f"batch_{j % 10}", j / BATCH_SIZE, 1700000000000 + j, j // 10) for j in range(BATCH_SIZE)
        ]
        log_batch, _, _ = timed(api, lambda: client.log_batch(run_id, metrics=metrics), BATCH_REPEATS)
        history, _, points = timed(api, lambda: client.get_metric_history(run_id, "history"), HISTORY_REPEATS)
        if len(points) != history_points:
            raise AssertionError(f"stub history gave {len(points)} points")
        every, _, found = timed(api, lambda: search_all(client, "1"), SEARCH_ALL_REPEATS)
        top, _, found_top = timed(api, lambda: search_top(client, "1"), SEARCH_FILTERED_REPEATS)
        if len(found) != runs or len(found_top) != min(runs, SEARCH_TOP):
            raise AssertionError(f"stub search gave {len(found)} and {len(found_top)} runs")
        return {
            "what": "the same client calls against a stub HTTP server (asyncio, one process) that answers "
            "at once with `{}`, canned metric-history pages or canned runs (10 params, 10 metrics, 1 tag "
            "each): the cost of the mlflow client and loopback HTTP alone, i.e. the least any server "
            "can take through this client",
            "log_metric": summary(log_metric),
            "log_batch_1000": {"median_ms": median_ms(log_batch)},
            "get_metric_history": {"median_ms": median_ms(history), "points": len(points)},
            "search_all": {"median_ms": median_ms(every), "runs": len(found)},
            "search_top100": {"median_ms": median_ms(top), "runs": len(found_top)},
            "failures": api.failures,
        }
    finally:
        api.uninstall()


# ---------------------------------------------------------------------------------------------
# the servers


def clean_env() -> dict[str, str]:
    return benchkit.clean_env(("MLFLOW_",), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")


def uv_command() -> list[str]:
    return benchkit.uv_command("the MLflow server's venv")


def venv_mlflow_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('mlflow'))"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_mlflow_venv(cache: Path, version: str) -> Path:
    """The MLflow server's own venv: <cache>/mlflow-venv with mlflow==version, reused when it fits."""
    venv = cache / "mlflow-venv"
    python = venv / "bin" / "python"
    if venv_mlflow_version(python) == version:
        return python
    uv = uv_command()
    env = clean_env()
    cache.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        print(f"creating {venv}", flush=True)
        subprocess.run([*uv, "venv", "--clear", str(venv)], check=True, env=env)
    print(f"installing mlflow=={version} into {venv}", flush=True)
    subprocess.run(
        [*uv, "pip", "install", "--python", str(python), f"mlflow=={version}"], check=True, env=env
    )
    if (found := venv_mlflow_version(python)) != version:
        raise RuntimeError(f"{venv} has mlflow {found}, wanted {version}")
    return python


def mlflow_server(python: Path, workdir: Path) -> tuple[Server, dict[str, Any]]:
    port = free_port()
    workdir.mkdir(parents=True)
    env = clean_env()
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    # mlflow 3.x also starts a job runner (7 huey consumer processes) that the tracking API doesn't use
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    cmd = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    config = {
        "command": " ".join(cmd).replace(str(workdir), "<tmp>").replace(str(python.parent), "<venv>/bin"),
        "server": "mlflow server (uvicorn, the default for this version), 1 worker process, "
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (no huey job runner beside it)",
        "backend": "SQLite",
        "venv": str(python.parent.parent),
        "python": subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout.strip(),
        "mlflow_version": venv_mlflow_version(python),
    }
    return Server("mlflow server", cmd, env, port, workdir / "server.log"), config


def our_server(workdir: Path) -> tuple[Server, dict[str, Any]]:
    port = free_port()
    workdir.mkdir(parents=True)
    env = clean_env()
    env.update(
        {
            "MLOPS_DATA_DIR": str(workdir / "data"),
            "MLOPS_EXPERIMENT_TRACKING_PORT": str(port),
            "MLOPS_ENV_FILE": "",
            "MLOPS_LOG_JSON": "false",
            "MLOPS_LOG_LEVEL": "warning",
        }
    )
    cmd = [sys.executable, "-m", "experiment_tracking"]
    try:
        version = metadata.version("experiment-tracking")
    except metadata.PackageNotFoundError:
        version = "unknown"
    config = {
        "command": "python -m experiment_tracking",
        "env": {k: v.replace(str(workdir), "<tmp>") for k, v in env.items() if k.startswith("MLOPS_")},
        "server": "uvicorn via mlops_kit.app.serve, 1 process",
        "backend": "SQLite under MLOPS_DATA_DIR (the service's own migrations at start-up)",
        "python": platform.python_version(),
        "version": version,
    }
    return Server("our service", cmd, env, port, workdir / "server.log"), config


def stub_server(workdir: Path, history_points: int, runs: int) -> Server:
    workdir.mkdir(parents=True)
    port = free_port()
    cmd = [sys.executable, "-c", STUB_SERVER, str(port), str(history_points), str(runs)]
    return Server("stub server", cmd, clean_env(), port, workdir / "server.log")


def bench_server(
    server: Server, config: dict[str, Any], args: argparse.Namespace, search_runs: int
) -> dict[str, Any]:
    print(f"{server.name}: {config['command']}", flush=True)
    out: dict[str, Any] = {"config": config}
    try:
        out["startup_s"] = server.start(args.startup_timeout)
        print(f"{server.name}: healthy after {out['startup_s']} s on {server.uri}", flush=True)
        out.update(scenario(server.uri, args.runs, args.history_points, search_runs, args.populate_threads))
    except Exception as exc:
        out.setdefault("errors", []).append(
            {"step": "start", "error": f"{type(exc).__name__}: {exc}"[-3000:]}
        )
        print(f"{server.name}: FAILED: {exc}", flush=True)
    finally:
        if out.get("errors"):
            out["server_log_tail"] = server.log_tail()
        server.stop()
    return out


# ---------------------------------------------------------------------------------------------
# the report

ROWS: list[tuple[str, str, str, str, str | None]] = [
    # (label, step, field, unit, absolute target)
    ("log_metric, median per call", "log_metric", "p50_ms", "ms", "< 2 ms"),
    ("log_metric, p99 per call", "log_metric", "p99_ms", "ms", None),
    ("log_metric, {n} calls in total", "log_metric", "total_s", "s", None),
    ("log_batch of 1,000 metrics, median", "log_batch_1000", "median_ms", "ms", None),
    ("populate {runs} runs x (10 params + 10 metrics)", "populate_runs", "total_s", "s", None),
    ("search_runs, all {runs} runs, median", "search_all", "median_ms", "ms", None),
    (
        "search_runs, filtered + ordered top 100 of {runs}, median",
        "search_filtered_top100",
        "median_ms",
        "ms",
        None,
    ),
    ("get_metric_history, {points} points, median", "get_metric_history", "median_ms", "ms", None),
]


def figure(result: dict[str, Any] | None, step: str, field: str) -> float | None:
    if not result:
        return None
    value = result.get("steps", {}).get(step, {}).get(field)
    return float(value) if value is not None else None


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def build_table(results: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    ml, ours = results["servers"].get("mlflow"), results["servers"].get("ours")
    cfg = results["config"]
    lines = [
        "| operation | MLflow | ours | ratio (MLflow/ours) | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = []
    counts = cfg["search_runs_for"]
    big_rows = []
    if counts.get("ours") or counts.get("mlflow"):
        big = counts.get("ours") or counts.get("mlflow")
        big_rows.append(
            (
                f"search_runs, filtered + ordered top 100 of {big:,}, median of {BIG_SEARCH_REPEATS}",
                "search_big",
                "median_ms",
                "ms",
                "< 50 ms",
            )
        )
    for label, step, field, unit, absolute in ROWS + big_rows:
        name = label.format(n=LOG_METRIC_CALLS, runs=cfg["runs"], points=f"{cfg['history_points']:,}")
        a, b = figure(ml, step, field), figure(ours, step, field)
        comparable = step != "search_big" or counts.get("mlflow") == counts.get("ours")
        if not comparable:
            a = None  # measured with another run count: shown in the large-search table below
        ratio = round(a / b, 2) if a is not None and b else None
        checks = []
        target_text = [f">= {RATIO_TARGET:g}x"]
        if ml is not None and ours is not None and comparable:
            checks.append(ratio is not None and ratio >= RATIO_TARGET)
        if absolute:
            target_text.append(f"ours {absolute}")
            if ours is not None:
                checks.append(b is not None and b < float(absolute.split()[1]))
        mark = "" if not checks else (" pass" if all(checks) else " **FAIL**")
        lines.append(
            f"| {name} ({unit}) | {fmt(a)} | {fmt(b)} | {f'{ratio:g}x' if ratio else 'n/a'} | "
            f"{', '.join(target_text)}{mark} |"
        )
        rows.append(
            {
                "operation": name,
                "unit": unit,
                "mlflow": a,
                "ours": b,
                "ratio": ratio,
                "pass": all(checks) if checks else None,
            }
        )
    return lines, rows


TIME_ROWS: list[tuple[str, str, str, str | None]] = [
    # (label, step, field of the full time, field of the HTTP part); the floor is looked up by step
    ("log_metric, median per call", "log_metric", "p50_ms", "http_p50_ms"),
    ("log_batch of 1,000 metrics, median", "log_batch_1000", "median_ms", "http_median_ms"),
    ("search_runs, all, median", "search_all", "median_ms", "http_median_ms"),
    (
        "search_runs, filtered + ordered top 100, median",
        "search_filtered_top100",
        "median_ms",
        "http_median_ms",
    ),
    ("get_metric_history, median", "get_metric_history", "median_ms", "http_median_ms"),
    ("large search (ours: {n:,} runs), median", "search_big", "median_ms", "http_median_ms"),
]


def where_time_goes(results: dict[str, Any]) -> list[str]:
    """Each time split into the HTTP round trip and the client's own work, beside the client's floor."""
    floor = results.get("client_floor", {})
    floors = {
        "log_metric": floor.get("log_metric", {}).get("p50_ms"),
        "log_batch_1000": floor.get("log_batch_1000", {}).get("median_ms"),
        "get_metric_history": floor.get("get_metric_history", {}).get("median_ms"),
        "search_all": floor.get("search_all", {}).get("median_ms"),
        "search_filtered_top100": floor.get("search_top100", {}).get("median_ms"),
        "search_big": floor.get("search_top100", {}).get("median_ms"),
    }
    lines = [
        "Where the time goes (ms): the full figure / the part spent in HTTP round trips (request sent, "
        "server work, answer read); the rest is the mlflow client building the request and parsing the "
        "answer. The client floor is the same call against a stub server that answers at once: no server "
        "can be faster than that through this client, so MLflow / floor is the most any server can reach.",
        "",
        "| operation | MLflow: all / HTTP | ours: all / HTTP | client floor (stub) | MLflow / floor |",
        "| --- | --- | --- | --- | --- |",
    ]
    n = results["config"]["search_runs_for"].get("ours", 0)
    for label, step, field, http_field in TIME_ROWS:
        if step == "search_big" and not any(figure(r, step, field) for r in results["servers"].values()):
            continue
        cells = []
        for key in ("mlflow", "ours"):
            server = results["servers"].get(key)
            cells.append(
                f"{fmt(figure(server, step, field))} / {fmt(figure(server, step, http_field or ''))}"
            )
        mlflow_full = figure(results["servers"].get("mlflow"), step, field)
        low = floors.get(step)
        best = f"{mlflow_full / low:.1f}x" if mlflow_full and low else "n/a"
        lines.append(f"| {label.format(n=n)} | {cells[0]} | {cells[1]} | {fmt(low)} | {best} |")
    return [*lines, ""]


def write(results: dict[str, Any]) -> str:
    table, rows = build_table(results)
    results["table"] = rows
    cfg = results["config"]
    lines = [
        "# Experiment tracking benchmark",
        "",
        f"{results['when']} on {results['machine']}; cpu calibration {results['cpu_calibration_s']} s "
        "(a fixed pure-Python loop: larger means a slower or busier machine).",
        "",
        f"The same script (`scenario()` in `scripts/bench/tracking_bench.py`) drives each server through the "
        f"unmodified `mlflow` {results['versions']['mlflow_client']} client (`MlflowClient`) over loopback "
        "HTTP; the servers run one after the other, never side by side. Ratio = MLflow time / our time "
        "(higher is better for us).",
        "",
        *table,
        "",
    ]
    big = {
        key: results["servers"][key].get("steps", {}).get("search_big", {})
        for key, n in cfg["search_runs_for"].items()
        if n and key in results["servers"]
    }
    if big:
        lines += [
            f"Large search: `{SEARCH_FILTER}` ordered by `{SEARCH_ORDER[0]}`, top {SEARCH_TOP}, "
            f"median of {BIG_SEARCH_REPEATS} calls after one warm-up; runs populated beforehand by "
            f"{cfg['populate_threads']} client threads (create_run + log_batch + set_terminated each).",
            "",
            "| server | runs | median (ms) | p99 (ms) | populating (s) | target |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key, label in (("ours", "ours"), ("mlflow", "MLflow")):
            if key not in big:
                continue
            step, n = big[key], cfg["search_runs_for"][key]
            target = ""
            if key == "ours":
                median = step.get("median_ms")
                target = "< 50 ms" + ("" if median is None else " pass" if median < 50 else " **FAIL**")
            lines.append(
                f"| {label} | {n:,} | {fmt(step.get('median_ms'))} | {fmt(step.get('p99_ms'))} | "
                f"{fmt(step.get('populate_s'))} | {target} |"
            )
        lines.append("")
        counts = cfg["search_runs_for"]
        if "mlflow" not in big:
            lines += ["MLflow is not measured on the large search (see `--mlflow-search-runs`).", ""]
        elif counts.get("mlflow") != counts.get("ours"):
            lines += [
                f"MLflow is measured with {counts['mlflow']:,} runs and ours with {counts.get('ours', 0):,} "
                "(`--mlflow-search-runs`), so the two make no ratio.",
                "",
            ]
    lines += where_time_goes(results)
    lines += ["## How each was run", ""]
    for key, label in (("mlflow", "MLflow"), ("ours", "Ours")):
        server = results["servers"].get(key)
        if server:
            c = server["config"]
            lines.append(f"- {label}: `{c['command']}`; {c['server']}; {c['backend']}; Python {c['python']}.")
    lines += [
        "- Client: `MLFLOW_HTTP_REQUEST_MAX_RETRIES=0` (a server error fails at once), "
        "`MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT=true` (else `set_terminated` GETs the run again to print "
        "its URL), telemetry off.",
        f"- Populating: per run `create_run` + one `log_batch` (10 params + 10 metrics) + `set_terminated`; "
        f"params p0 alternates v0/v1, m0..m9 uniform in [0, 1), so `{SEARCH_FILTER}` matches about "
        "a quarter of the runs.",
        "- Every search result is checked against what was logged; every step's full description and raw "
        "samples are in tracking.json.",
        "",
    ]
    errors = [(key, e) for key, server in results["servers"].items() for e in server.get("errors", [])]
    if errors:
        lines += ["## Errors", ""]
        for key, e in errors:
            lines.append(f"- {key}, {e['step']}: {e['error'][:500]}")
            for req in e.get("failed_requests", []):
                lines.append(
                    f"  - `{req['request']}` -> {req['status']}: body `{req['body'][:300]}`, "
                    f"answer `{req['response'][:300]}`"
                )
        lines.append("")
    markdown = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tracking.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "tracking.md").write_text(markdown)
    return markdown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="runs to populate and search (both servers)")
    parser.add_argument("--history-points", type=int, default=100_000)
    parser.add_argument("--search-runs", type=int, default=10_000, help="runs for the large search (ours)")
    parser.add_argument(
        "--mlflow-search-runs",
        type=int,
        help="runs for the large search on MLflow (default: as --search-runs; 0: skip it; populating "
        "10,000 runs through MLflow takes about 4 minutes)",
    )
    parser.add_argument("--only", choices=["both", "ours", "mlflow"], default="both")
    parser.add_argument(
        "--populate-threads",
        type=int,
        default=POPULATE_THREADS,
        help="client threads populating the large-search runs",
    )
    parser.add_argument("--mlflow-version", default=mlflow.__version__, help="default: the client's version")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench", help="where the MLflow venv lives")
    parser.add_argument("--startup-timeout", type=float, default=120)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    wanted = ["mlflow", "ours"] if args.only == "both" else [args.only]
    mlflow_search = args.search_runs if args.mlflow_search_runs is None else args.mlflow_search_runs
    search_for = {"ours": args.search_runs, "mlflow": mlflow_search}
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu_calibration_s": cpu_calibration(),
        "versions": {
            "mlflow_client": mlflow.__version__,
            "mlflow_server": args.mlflow_version,
            "sqlite": sqlite3.sqlite_version,
        },
        "config": {
            "runs": args.runs,
            "history_points": args.history_points,
            "search_runs_for": {k: v for k, v in search_for.items() if k in wanted},
            "only": args.only,
            "populate_threads": args.populate_threads,
            "log_metric_calls": LOG_METRIC_CALLS,
            "search_filter": SEARCH_FILTER,
            "search_order_by": SEARCH_ORDER,
            "targets": {
                "ratio": f"every figure >= {RATIO_TARGET:g}x faster than MLflow",
                "log_metric_p50_ms": "< 2",
                "search_10k_filtered_ordered_median_ms": "< 50",
            },
        },
        "servers": {},
    }
    with tempfile.TemporaryDirectory(prefix="tracking-bench-") as tmp:
        stub = stub_server(Path(tmp) / "stub", args.history_points, args.runs)
        try:
            stub.start(30)
            results["client_floor"] = client_floor(stub.uri, args.history_points, args.runs)
        finally:
            stub.stop()
        for key in wanted:
            if key == "mlflow":
                python = ensure_mlflow_venv(args.cache_dir, args.mlflow_version)
                server, config = mlflow_server(python, Path(tmp) / "mlflow")
            else:
                server, config = our_server(Path(tmp) / "ours")
            try:
                results["servers"][key] = bench_server(server, config, args, search_for[key])
            finally:
                server.stop()
    results["cpu_calibration_after_s"] = cpu_calibration()
    print(write(results))
    failed = any(server.get("errors") for server in results["servers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
