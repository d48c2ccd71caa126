"""A/B testing benchmark: routing latency and throughput, local evaluation, event ingestion, analysis.

Starts a real service (`python -m ab_testing`, one uvicorn worker) on a free loopback port with
embedded SQLite under a temporary MLOPS_DATA_DIR, and drives it over HTTP. The issue's targets:

- route: 5,000 sequential `GET /api/route?user_id=&experiment=` over one keep-alive httpx
  connection (after a warm-up) -> p50/p99/mean, target p99 < 2 ms; then --clients concurrent
  keep-alive connections for --duration s -> routes/s and errors, target >= 3,000/s. Every user
  id is new (a realistic stream of users: each one is an exposure the service buffers and
  writes). Throughput is measured with a lean asyncio HTTP/1.1 client (raw keep-alive sockets,
  a few % of a core) and also with httpx.AsyncClient, which needs more CPU than the server on
  this kind of machine; the server's own CPU use during the window is recorded.
- local evaluation: `mlops_client.ab_routing.evaluate(definition, user_id)` with the dict from
  `GET /api/experiments/{e}/definition`, with `compile_definition(...)` once, and
  `LocalRouter.assign`: µs per call over --eval-calls distinct users, target < 20 µs.
- ingestion: --events events (a mix of binary / continuous / ratio components and CUPED
  covariates over --users users, unique event ids, no variant: the service assigns) in batches
  of --batch, sequentially and with --ingest-clients concurrent clients, each into its own
  experiment -> events/s, target >= 50,000/s. The JSON bodies are encoded before the clock starts.
  Afterwards the service's sufficient statistics (`metric_stats`, `exposure_counts`, read from the
  SQLite file) are checked against an independent numpy reduction of the same events.
- analysis: an experiment with --analysis-events events over --analysis-users users. A sample
  (--analysis-sample events) is ingested over HTTP and checked the same way; the rest is ingested
  over HTTP only if the measured sequential rate would do it within --real-ingest-budget seconds.
  Otherwise the experiment is brought to the full count by writing the sufficient statistics the
  ingestion path produces for all the events (the same numpy reduction, checked above against the
  service on the HTTP-ingested experiments) into `metric_stats` / `exposure_counts`; raw `events`
  and `user_metrics` rows are not written (analysis reads neither; only `mann_whitney=true` reads
  user rows). `GET /api/experiments/{e}/results` is timed --analysis-calls times on the sample
  and on the full experiment, and on the ingestion experiment, to show the time does not depend
  on the event count. Target: p99 < 100 ms at 10 million events.

A cpu calibration (a fixed pure-Python loop) and the 1-minute load average go with every figure:
the machine may be shared. With --py-spy PATH, every scenario that missed its target is run
again under `py-spy record` attached to the service, and the hot frames go into the results.

    uv run python scripts/bench/ab_bench.py [--quick] [--py-spy PATH] [--only route eval ingest analysis]

--quick is a smoke run of some seconds; it prints the figures and writes nothing unless --write.
Writes scripts/bench/results/ab_testing.json and ab_testing.md (with --database-url: the service on
PostgreSQL, ab_testing_postgres.json and .md). Exit status 1 when a check failed
(errors, statistics that differ from the reduction, wrong routes); a missed target alone is not one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import platform
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from ab_bench_report import (
    ANALYSIS_TARGET_EVENTS,
    TARGET_ANALYSIS_MS,
    TARGET_EVAL_US,
    TARGET_EVENTS_PER_S,
    TARGET_ROUTE_P99_MS,
    TARGET_ROUTES_PER_S,
    headline,
    write,
)
from benchkit import (
    PySpy,
    Server,
    clean_env,
    cpu_calibration,
    free_port,
    machine_state,
    percentile,
)
from benchkit import source_state as benchkit_source_state
from mlops_client.ab_routing import compile_definition, evaluate

try:
    import orjson

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)
except ImportError:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parents[1]

VARIANTS = [
    {"name": "control", "weight": 0.34, "model_version": "1"},
    {"name": "treatment_a", "weight": 0.33, "model_version": "2"},
    {"name": "treatment_b", "weight": 0.33, "model_version": "3"},
]
METRICS = [
    {"name": "conversion", "type": "binary", "direction": "higher"},
    {"name": "revenue", "type": "continuous", "direction": "higher"},
    {"name": "ctr", "type": "ratio", "numerator": "clicks", "denominator": "views", "direction": "higher"},
    {"name": "latency_ms", "type": "continuous", "direction": "lower"},
]
# what events name (ratio components included); kind 5 is a revenue event carrying the CUPED covariate
COMPONENTS = ["conversion", "revenue", "clicks", "views", "latency_ms"]
COVARIATE = 5
KIND_SHARE = [0.08, 0.12, 0.20, 0.40, 0.15, 0.05]
STAT_FIELDS = (
    "n",
    "sum",
    "sum_sq",
    "n_cov",
    "sum_x",
    "sum_x_sq",
    "sum_xy",
    "sum_den",
    "sum_den_sq",
    "sum_num_den",
)


# ---------------------------------------------------------------------------------------------
# the machine, the service


def source_state() -> dict[str, Any]:
    """The commit measured, and whether the service's files differed from it (others edit it too)."""
    return benchkit_source_state(
        ROOT,
        "services/ab_testing/src",
        "libs/mlops_client/src/mlops_client/ab_routing.py",
        "libs/mlops_kit/src",
    )


def start_server(
    workdir: Path, timeout: float, extra_env: dict[str, str] | None = None
) -> tuple[Server, dict[str, Any]]:
    port = free_port()
    env = clean_env()
    env.update(
        {
            "MLOPS_DATA_DIR": str(workdir / "data"),
            "MLOPS_AB_TESTING_PORT": str(port),
            "MLOPS_ENV_FILE": "",
            "MLOPS_LOG_JSON": "false",
            "MLOPS_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
    )
    server = Server("ab_testing", [sys.executable, "-m", "ab_testing"], env, port, workdir / "server.log")
    startup = server.start(timeout)
    settings: dict[str, Any] = {}
    try:
        from ab_testing.settings import AbTestingSettings

        fields = AbTestingSettings.model_fields
        settings = {
            k: fields[k].default
            for k in (
                "definition_cache_seconds",
                "exposure_flush_seconds",
                "exposure_buffer_max",
                "max_events_per_request",
            )
            if k in fields
        }
    except Exception:  # only for the record
        pass
    config = {
        "command": "python -m ab_testing (one uvicorn worker)",
        "env": {k: v.replace(str(workdir), "<tmp>") for k, v in env.items() if k.startswith("MLOPS_")},
        "storage": "embedded SQLite under MLOPS_DATA_DIR (WAL)",
        "service_settings_defaults": settings,
        "startup_s": startup,
    }
    return server, config


def database_file(workdir: Path) -> Path:
    return workdir / "data" / "ab_testing" / "metadata.db"


class StatsDb:
    """The service's database, read (the statistics check) and written (the 10M-event analysis)
    behind the service's back: its SQLite file, or the PostgreSQL database given by --database-url.
    Statements are written with SQLite's ``?``."""

    def __init__(self, target: Path | str, *, read_only: bool = False):
        self.postgres = isinstance(target, str)
        if self.postgres:
            import psycopg

            self.con: Any = psycopg.connect(str(target).replace("postgresql+psycopg://", "postgresql://"))
        elif read_only:
            self.con = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=60)
        else:
            self.con = sqlite3.connect(str(target), timeout=60, isolation_level=None)
            self.con.execute("PRAGMA busy_timeout=60000")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.con.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.con.cursor().executemany(self._sql(sql), rows)

    def begin(self) -> None:
        if not self.postgres:  # psycopg opens a transaction on the first statement
            self.con.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.postgres:
            self.con.commit()
        else:
            self.con.execute("COMMIT")

    def columns(self, table: str) -> set[str]:
        if self.postgres:
            found = self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
            )
            return {r[0] for r in found}
        return {r[1] for r in self.con.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self.con.close()


class Api:
    def __init__(self, uri: str):
        self.uri = uri
        self.http = httpx.Client(base_url=uri, timeout=300)

    def close(self) -> None:
        self.http.close()

    def _ok(self, r: httpx.Response, what: str) -> dict[str, Any]:
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{what}: HTTP {r.status_code} {r.text[:500]}")
        return r.json()

    def experiment(self, key: str) -> dict[str, Any]:
        body = {
            "key": key,
            "name": key,
            "hypothesis": "benchmark",
            "variants": VARIANTS,
            "metrics": METRICS,
            "primary_metric": "conversion",
            "guardrail_metrics": ["latency_ms"],
            "coverage": 1.0,
        }
        created = self._ok(self.http.post("/api/experiments", json=body), f"creating {key}")
        self._ok(self.http.post(f"/api/experiments/{key}/start"), f"starting {key}")
        return created

    def definition(self, key: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/api/experiments/{key}/definition"), f"definition of {key}")

    def results(self, key: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/api/experiments/{key}/results"), f"results of {key}")


class CpuMeter:
    """The service process's CPU seconds (all threads) over a window, and its folder process's
    (the child that folds accepted events into the statistics)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)

    def seconds(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def children_seconds(self) -> float:
        total = 0.0
        for child in self.proc.children(recursive=True):
            try:
                t = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total


def ms_stats(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "p50_ms": round(percentile(samples, 50), 3),
        "p90_ms": round(percentile(samples, 90), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


# ---------------------------------------------------------------------------------------------
# routing


def route_latency(api: Api, key: str, n: int, warmup: int, definition: dict[str, Any]) -> dict[str, Any]:
    """n sequential routes, each a new user, over one keep-alive httpx connection."""
    compiled = compile_definition(definition)
    http = httpx.Client(base_url=api.uri, timeout=30, limits=httpx.Limits(max_connections=1))
    try:
        for i in range(warmup):
            http.get("/api/route", params={"user_id": f"warm-{i}", "experiment": key}).raise_for_status()
        before = machine_state()
        samples: list[float] = []
        wrong = errors = 0
        for i in range(n):
            user = f"seq-{i}"
            t0 = time.perf_counter()
            r = http.get("/api/route", params={"user_id": user, "experiment": key})
            samples.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
            elif r.json()["variant"] != compiled.evaluate(user).variant:
                wrong += 1
        after = machine_state()
    finally:
        http.close()
    return {
        "client": "httpx.Client, one keep-alive connection",
        "requests": n,
        "warmup": warmup,
        **ms_stats(samples),
        "errors": errors,
        "answers_differing_from_local_evaluate": wrong,
        "machine_before": before,
        "machine_after": after,
    }


async def _raw_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


def route_latency_raw(uri: str, key: str, n: int) -> dict[str, Any]:
    """The same sequential routes through the lean client: how much of the latency is httpx's."""
    host, port = uri.removeprefix("http://").split(":")

    async def go() -> tuple[list[float], int]:
        reader, writer = await asyncio.open_connection(host, int(port))
        samples, errors = [], 0
        try:
            for i in range(n):
                t0 = time.perf_counter()
                status = await _raw_get(reader, writer, f"/api/route?user_id=rawseq-{i}&experiment={key}")
                samples.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            writer.close()
        return samples, errors

    before = machine_state()
    samples, errors = asyncio.run(go())
    return {
        "client": "lean asyncio HTTP/1.1 client, one keep-alive connection",
        "requests": n,
        **ms_stats(samples),
        "errors": errors,
        "machine_before": before,
        "machine_after": machine_state(),
    }


async def _lean_load(uri: str, key: str, clients: int, duration: float, tag: str) -> dict[str, Any]:
    host, port = uri.removeprefix("http://").split(":")
    ok = errors = 0
    failures: collections.Counter[str] = collections.Counter()
    deadline = time.perf_counter() + duration

    async def one(k: int) -> None:
        nonlocal ok, errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = 0
        try:
            while time.perf_counter() < deadline:
                i += 1
                try:
                    status = await _raw_get(
                        reader, writer, f"/api/route?user_id={tag}{k}-{i}&experiment={key}"
                    )
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors += 1
                    failures[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                    continue
                if status == 200:
                    ok += 1
                else:
                    errors += 1
                    failures[f"HTTP {status}"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(k) for k in range(clients)))
    return {"ok": ok, "errors": errors, "failures": dict(failures)}


async def _httpx_load(uri: str, key: str, clients: int, duration: float, tag: str) -> dict[str, Any]:
    ok = errors = 0
    failures: collections.Counter[str] = collections.Counter()
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=uri, timeout=30, limits=limits) as http:

        async def one(k: int) -> None:
            nonlocal ok, errors
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                try:
                    r = await http.get("/api/route", params={"user_id": f"{tag}{k}-{i}", "experiment": key})
                except httpx.HTTPError as exc:
                    errors += 1
                    failures[type(exc).__name__] += 1
                    continue
                if r.status_code == 200:
                    ok += 1
                else:
                    errors += 1
                    failures[f"HTTP {r.status_code}"] += 1

        await asyncio.gather(*(one(k) for k in range(clients)))
    return {"ok": ok, "errors": errors, "failures": dict(failures)}


def _threads_load(uri: str, key: str, clients: int, duration: float, tag: str) -> dict[str, Any]:
    ok = errors = 0
    failures: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def one(k: int) -> None:
        nonlocal ok, errors
        with httpx.Client(base_url=uri, timeout=30) as http:
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                try:
                    r = http.get("/api/route", params={"user_id": f"{tag}{k}-{i}", "experiment": key})
                    failure = None if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    failure = type(exc).__name__
                with lock:
                    if failure is None:
                        ok += 1
                    else:
                        errors += 1
                        failures[failure] += 1

    threads = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"ok": ok, "errors": errors, "failures": dict(failures)}


def route_throughput(
    api: Api, key: str, clients: int, duration: float, cpu: CpuMeter, client: str
) -> dict[str, Any]:
    tag = f"{client}-{clients}-{time.monotonic_ns()}-"
    before = machine_state()
    server0, mine0, t0 = cpu.seconds(), time.process_time(), time.perf_counter()
    if client == "httpx_threads":
        got = _threads_load(api.uri, key, clients, duration, tag)
    else:
        load = _lean_load if client == "lean" else _httpx_load
        got = asyncio.run(load(api.uri, key, clients, duration, tag))
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = cpu.seconds() - server0, time.process_time() - mine0
    return {
        "client": {
            "lean": "lean asyncio HTTP/1.1 client (raw keep-alive sockets)",
            "httpx": "httpx.AsyncClient (one pool of keep-alive connections)",
            "httpx_threads": "threads, an httpx.Client (keep-alive) each",
        }[client],
        "connections": clients,
        "duration_s": round(wall, 3),
        "routes": got["ok"],
        "routes_per_s": round(got["ok"] / wall, 1),
        "errors": got["errors"],
        "failures": got["failures"],
        "server_cpu_share": round(server_cpu / wall, 3),
        "server_cpu_us_per_route": round(server_cpu / max(got["ok"], 1) * 1e6, 1),
        "client_cpu_share": round(client_cpu / wall, 3),
        "machine_before": before,
        "machine_after": machine_state(),
    }


# ---------------------------------------------------------------------------------------------
# local evaluation


def local_evaluation(api: Api, key: str, calls: int, repeats: int) -> dict[str, Any]:
    definition = api.definition(key)
    compiled = compile_definition(definition)
    users = [f"user-{i}" for i in range(calls)]
    out: dict[str, Any] = {
        "calls": calls,
        "repeats": repeats,
        "definition": {k: definition.get(k) for k in ("key", "status", "phase", "coverage", "namespace")},
        "variants": len(definition["variants"]),
    }
    cases: list[tuple[str, Any]] = [
        ("evaluate(definition dict, user_id)", lambda: [evaluate(definition, u) for u in users]),
        ("evaluate(compile_definition(...) once, user_id)", lambda: [evaluate(compiled, u) for u in users]),
        ("CompiledExperiment.evaluate(user_id)", lambda: [compiled.evaluate(u) for u in users]),
    ]
    router = None
    try:
        from mlops_client.ab_testing import AbTestingClient, LocalRouter

        ab = AbTestingClient(api.uri)
        router = LocalRouter(ab, key, background=True)
        cases.append(("LocalRouter.assign(user_id)", lambda: [router.assign(u) for u in users]))
    except Exception as exc:  # the client may change under us; the rest still runs
        out["local_router_error"] = f"{type(exc).__name__}: {exc}"
    empty = min(timeit.repeat(lambda: [None for _ in users], number=1, repeat=repeats))
    out["loop_overhead_us"] = round(empty / calls * 1e6, 3)
    out["cases"] = []
    for name, fn in cases:
        before = machine_state()
        times = timeit.repeat(fn, number=1, repeat=repeats)
        out["cases"].append(
            {
                "call": name,
                "us_per_call_median": round(statistics.median(times) / calls * 1e6, 3),
                "us_per_call_best": round(min(times) / calls * 1e6, 3),
                "calls_per_s_median": round(calls / statistics.median(times)),
                "machine_before": before,
                "machine_after": machine_state(),
            }
        )
    if router is not None:
        router.close()
        ab.close()
    return out


# ---------------------------------------------------------------------------------------------
# events: generation, HTTP ingestion, and the reduction to sufficient statistics


@dataclass
class Events:
    user: np.ndarray  # int64, index into the users
    kind: np.ndarray  # int8, index into COMPONENTS, or COVARIATE
    value: np.ndarray  # float64 (NaN for covariate events)
    users: int
    variant_of_user: np.ndarray  # int8, index into VARIANTS
    covariate_of_user: np.ndarray  # float64, the user's pre-period revenue

    def __len__(self) -> int:
        return len(self.user)

    def head(self, n: int) -> Events:
        return Events(
            self.user[:n],
            self.kind[:n],
            self.value[:n],
            self.users,
            self.variant_of_user,
            self.covariate_of_user,
        )


def user_name(u: int) -> str:
    return f"user-{u}"


def assign_users(definition: dict[str, Any], users: int) -> np.ndarray:
    """Each user's variant index, with the service's own assignment function."""
    compiled = compile_definition(definition)
    index = {v["name"]: i for i, v in enumerate(definition["variants"])}
    out = np.empty(users, dtype=np.int8)
    for u in range(users):
        a = compiled.evaluate(user_name(u))
        if not a.in_experiment:
            raise RuntimeError("the benchmark's experiments have coverage 1: every user is in")
        out[u] = index[a.variant]
    return out


def make_events(n: int, users: int, seed: int, variant_of_user: np.ndarray) -> Events:
    """n events over `users` users: conversions (0/1), revenue (lognormal, correlated with the
    user's pre-period covariate), clicks and views (the ratio metric ctr), latency, covariates.
    The treatments convert and spend a little more."""
    rng = np.random.default_rng(seed)
    covariate = np.round(rng.lognormal(3.0, 0.6, users), 2)
    user = rng.integers(0, users, n, dtype=np.int64)
    kind = rng.choice(len(KIND_SHARE), n, p=KIND_SHARE).astype(np.int8)
    lift = variant_of_user[user].astype(np.float64)
    u01 = rng.random(n)
    value = np.full(n, np.nan)
    m = kind == 0
    value[m] = (u01[m] < 0.3 * (1 + 0.04 * lift[m])).astype(np.float64)
    m = kind == 1
    value[m] = np.round(covariate[user[m]] * rng.lognormal(-0.1, 0.5, int(m.sum())) * (1 + 0.02 * lift[m]), 2)
    m = kind == 2
    value[m] = (u01[m] < 0.5).astype(np.float64)
    value[kind == 3] = 1.0
    m = kind == 4
    value[m] = np.round(np.clip(rng.normal(120.0, 25.0, int(m.sum())), 1.0, None), 1)
    return Events(user, kind, value, users, variant_of_user, covariate)


def encode_batch(ev: Events, start: int, stop: int, key: str, id_prefix: str) -> bytes:
    users = ev.user[start:stop].tolist()
    kinds = ev.kind[start:stop].tolist()
    values = ev.value[start:stop].tolist()
    cov = ev.covariate_of_user
    batch = []
    for i, (u, k, v) in enumerate(zip(users, kinds, values, strict=True)):
        event: dict[str, Any] = {
            "event_id": f"{id_prefix}{start + i}",
            "experiment": key,
            "user_id": user_name(u),
        }
        if k == COVARIATE:
            event["metric"] = "revenue"
            event["covariate"] = float(cov[u])
        else:
            event["metric"] = COMPONENTS[k]
            event["value"] = v
        batch.append(event)
    return dumps({"events": batch})


RETRIES = 4  # a 503/504 (retryable: nothing was written, or it may be) is sent again, as the client does


def post_batches(
    uri: str, bodies: Any, count: int, clients: int, sizes: list[int], cpu: CpuMeter | None
) -> tuple[dict[str, Any], set[int]]:
    """POST body(i) for i < count from `clients` threads, each with its own keep-alive connection.
    An answer 503/504 or a transport error is retried up to RETRIES times with backoff (events are
    idempotent on their ids, so a retry of a request that did take effect answers duplicates).
    Returns the figures and the indices of the batches the service accepted."""
    lock = threading.Lock()
    nxt = 0
    latencies: list[float] = []
    done_at: list[tuple[float, int]] = []  # (seconds since start, events) of each accepted batch
    ok_batches: set[int] = set()
    accepted = duplicates = retried_duplicates = skipped = rejected = errors = 0
    failures: collections.Counter[str] = collections.Counter()
    t_start = time.perf_counter()

    def send(http: httpx.Client, i: int) -> None:
        nonlocal accepted, duplicates, retried_duplicates, skipped, rejected, errors
        body = bodies(i)
        for attempt in range(RETRIES + 1):
            t0 = time.perf_counter()
            try:
                r = http.post("/api/events", content=body, headers={"content-type": "application/json"})
            except httpx.HTTPError as exc:
                outcome, retry = f"{type(exc).__name__}: {exc}"[:300], True
            else:
                took = time.perf_counter() - t0
                if r.status_code == 200:
                    got = r.json()
                    with lock:
                        latencies.append(took)
                        done_at.append((time.perf_counter() - t_start, got["accepted"]))
                        ok_batches.add(i)
                        accepted += got["accepted"]
                        duplicates += got["duplicates"]
                        retried_duplicates += got["duplicates"] if attempt else 0
                        skipped += got.get("not_in_experiment", 0)
                    return
                outcome, retry = f"HTTP {r.status_code} {r.text[:240]}", r.status_code in (503, 504)
                with lock:
                    latencies.append(took)
            with lock:
                rejected += 1
                failures[outcome] += 1
            if not retry or attempt == RETRIES:
                break
            time.sleep(0.5 * 2**attempt)
        with lock:
            errors += 1

    def worker() -> None:
        nonlocal nxt
        with httpx.Client(base_url=uri, timeout=600) as http:
            while True:
                with lock:
                    i, nxt = nxt, nxt + 1
                if i >= count:
                    return
                send(http, i)

    before = machine_state()
    server0 = cpu.seconds() if cpu else 0.0
    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    server_cpu = (cpu.seconds() - server0) if cpu else None
    figures = {
        "clients": clients,
        "batches": count,
        "batch_size": max(sizes) if sizes else 0,
        "events_sent": sum(sizes),
        "accepted": accepted,
        "duplicates": duplicates,
        "duplicates_on_retries": retried_duplicates,
        "not_in_experiment": skipped,
        "rejected_attempts": rejected,
        "errors": errors,
        "failures": [f"{n} x {what}" for what, n in failures.most_common(5)],
        "wall_s": round(wall, 3),
        "events_per_s": round(accepted / wall, 1) if wall else None,
        "trend": _trend(done_at),
        "batch_latency": ms_stats(latencies) if latencies else None,
        "server_cpu_share": round(server_cpu / wall, 3) if server_cpu is not None else None,
        "server_cpu_us_per_event": round(server_cpu / max(accepted, 1) * 1e6, 1) if server_cpu else None,
        "machine_before": before,
        "machine_after": machine_state(),
    }
    return figures, ok_batches


def _trend(done_at: list[tuple[float, int]]) -> dict[str, Any] | None:
    """events/s over the first and the last tenth of the accepted batches (does it slow down as
    the tables grow?)."""
    if len(done_at) < 10:
        return None
    done_at = sorted(done_at)
    k = max(1, len(done_at) // 10)
    first_s, first_n = done_at[k - 1][0], sum(n for _, n in done_at[:k])
    last_s = done_at[-1][0] - done_at[-k - 1][0]
    last_n = sum(n for _, n in done_at[-k:])
    return {
        "batches_per_tenth": k,
        "first_tenth_events_per_s": round(first_n / first_s, 1) if first_s else None,
        "last_tenth_events_per_s": round(last_n / last_s, 1) if last_s else None,
    }


def accepted_events(ev: Events, bounds: list[tuple[int, int]], ok: set[int]) -> Events:
    """The events of the accepted batches (what the service should have folded in)."""
    if len(ok) == len(bounds):
        return ev
    mask = np.zeros(len(ev), dtype=bool)
    for i in ok:
        mask[bounds[i][0] : bounds[i][1]] = True
    return Events(
        ev.user[mask], ev.kind[mask], ev.value[mask], ev.users, ev.variant_of_user, ev.covariate_of_user
    )


def reduce_events(ev: Events) -> tuple[dict[tuple[str, str], list[float]], dict[str, int]]:
    """The sufficient statistics the ingestion path keeps (`metric_stats` per variant x metric,
    `exposure_counts` per variant), computed independently with numpy from the same events.

    Per user and component metric: total of the values, count of value events, covariate (one
    value per user, so order does not matter). Binary: y = 1 if total > 0; continuous: y = total;
    counted if the user has a value event (or the metric is zero-filled: binary by default);
    covariate terms when the user sent one. Ratio: users with a numerator or denominator event,
    a = numerator total, b = denominator total. Exposed: every user with an event."""
    U, V = ev.users, len(VARIANTS)
    var = ev.variant_of_user
    totals: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for code, name in enumerate(COMPONENTS):
        m = ev.kind == code
        totals[name] = np.bincount(ev.user[m], weights=ev.value[m], minlength=U)
        counts[name] = np.bincount(ev.user[m], minlength=U)
    has_cov = np.zeros(U, dtype=bool)
    has_cov[ev.user[ev.kind == COVARIATE]] = True
    x_all = ev.covariate_of_user

    def per_variant(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else weights[mask]
        return np.bincount(var[mask], weights=w, minlength=V).astype(np.float64)

    stats: dict[tuple[str, str], list[float]] = {}
    for metric in METRICS:
        name = metric["name"]
        if metric["type"] == "ratio":
            a, b = totals[metric["numerator"]], totals[metric["denominator"]]
            present = (counts[metric["numerator"]] > 0) | (counts[metric["denominator"]] > 0)
            cols = [
                per_variant(present),
                per_variant(present, a),
                per_variant(present, a * a),
                *(np.zeros(V),) * 4,
                per_variant(present, b),
                per_variant(present, b * b),
                per_variant(present, a * b),
            ]
        else:
            total, events = totals[name], counts[name]
            has_events = events > 0
            cov_here = has_cov if name == "revenue" else np.zeros(U, dtype=bool)
            row = has_events | cov_here
            zero_fill = metric.get("zero_fill", metric["type"] == "binary")
            counted = row & (has_events | bool(zero_fill))
            y = (total > 0).astype(np.float64) if metric["type"] == "binary" else total
            xm = counted & cov_here
            cols = [
                per_variant(counted & has_events),
                per_variant(counted, y),
                per_variant(counted, y * y),
                per_variant(xm),
                per_variant(xm, x_all),
                per_variant(xm, x_all * x_all),
                per_variant(xm, x_all * y),
                *(np.zeros(V),) * 3,
            ]
        for i, v in enumerate(VARIANTS):
            values = [float(c[i]) for c in cols]
            if any(values):
                stats[(v["name"], name)] = values
    seen = np.bincount(ev.user, minlength=U) > 0
    exposed = np.bincount(var[seen], minlength=V)
    return stats, {v["name"]: int(exposed[i]) for i, v in enumerate(VARIANTS) if exposed[i]}


def read_stats(
    db: Path | str, experiment_id: str, phase: int = 1
) -> tuple[dict[tuple[str, str], list[float]], dict]:
    con = StatsDb(db, read_only=True)
    try:
        rows = con.execute(
            f"SELECT variant, metric, {', '.join(STAT_FIELDS)} FROM metric_stats "
            "WHERE experiment_id = ? AND phase = ?",
            (experiment_id, phase),
        ).fetchall()
        exposures = dict(
            con.execute(
                "SELECT variant, users FROM exposure_counts WHERE experiment_id = ? AND phase = ?",
                (experiment_id, phase),
            ).fetchall()
        )
    finally:
        con.close()
    return {(r[0], r[1]): [float(x) for x in r[2:]] for r in rows}, exposures


def compare_stats(
    expected: tuple[dict[tuple[str, str], list[float]], dict[str, int]],
    found: tuple[dict[tuple[str, str], list[float]], dict[str, int]],
) -> dict[str, Any]:
    (want, want_exp), (got, got_exp) = expected, found
    differ: list[str] = []
    for key in sorted(set(want) | set(got)):
        a, b = want.get(key, [0.0] * 10), got.get(key, [0.0] * 10)
        for f, x, y in zip(STAT_FIELDS, a, b, strict=True):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6):
                differ.append(f"{key[0]}/{key[1]}.{f}: reduction {x!r}, service {y!r}")
    for v in sorted(set(want_exp) | set(got_exp)):
        if want_exp.get(v, 0) != got_exp.get(v, 0):
            differ.append(f"exposures {v}: reduction {want_exp.get(v, 0)}, service {got_exp.get(v, 0)}")
    return {
        "rows_compared": len(set(want) | set(got)),
        "fields_compared": 10 * len(set(want) | set(got)) + len(set(want_exp) | set(got_exp)),
        "differences": len(differ),
        "examples": differ[:8],
        "ok": not differ,
    }


def write_stats(
    db: Path | str, experiment_id: str, stats: dict, exposures: dict[str, int], phase: int = 1
) -> float:
    """Replace the experiment's sufficient statistics with `stats` (what ingestion would have written)."""
    con = StatsDb(db)
    try:
        columns = con.columns("metric_stats")
        missing = {"experiment_id", "phase", "variant", "metric", *STAT_FIELDS} - columns
        if missing:
            raise RuntimeError(f"metric_stats has no column(s) {sorted(missing)}: the schema changed")
        t0 = time.perf_counter()
        con.begin()
        con.execute("DELETE FROM metric_stats WHERE experiment_id = ? AND phase = ?", (experiment_id, phase))
        con.execute(
            "DELETE FROM exposure_counts WHERE experiment_id = ? AND phase = ?", (experiment_id, phase)
        )
        con.executemany(
            f"INSERT INTO metric_stats (experiment_id, phase, variant, metric, {', '.join(STAT_FIELDS)}) "
            f"VALUES (?, ?, ?, ?, {', '.join('?' * len(STAT_FIELDS))})",
            [
                (experiment_id, phase, v, m, round(s[0]), s[1], s[2], round(s[3]), *s[4:])
                for (v, m), s in stats.items()
            ],
        )
        con.executemany(
            "INSERT INTO exposure_counts (experiment_id, phase, variant, users) VALUES (?, ?, ?, ?)",
            [(experiment_id, phase, v, n) for v, n in exposures.items()],
        )
        con.commit()
        return time.perf_counter() - t0
    finally:
        con.close()


def ingest_scenario(
    api: Api,
    cpu: CpuMeter,
    db: Path | str,
    key: str,
    events: int,
    users: int,
    batch: int,
    clients: int,
    seed: int,
) -> dict[str, Any]:
    created = api.experiment(key)
    definition = api.definition(key)
    t0 = time.perf_counter()
    ev = make_events(events, users, seed, assign_users(definition, users))
    bounds = [(s, min(s + batch, events)) for s in range(0, events, batch)]
    bodies = [encode_batch(ev, s, e, key, f"{key}-") for s, e in bounds]
    prepared = time.perf_counter() - t0
    folder0 = cpu.children_seconds()
    figures, ok = post_batches(
        api.uri, bodies.__getitem__, len(bodies), clients, [e - s for s, e in bounds], cpu
    )
    # the answers come once the events are durable; the folder processes turn them into statistics
    # meanwhile, and results calls fold what is still pending (until none is)
    backlog_s = drain(api, key)
    figures["results_after_last_answer_s"] = round(backlog_s, 3)
    figures["folded_events_per_s"] = round(figures["accepted"] / (figures["wall_s"] + backlog_s), 1)
    figures["folder_cpu_us_per_event"] = round(
        (cpu.children_seconds() - folder0) / max(figures["accepted"], 1) * 1e6, 1
    )
    # idempotency: the first batch again is all duplicates
    t1 = time.perf_counter()
    again = api.http.post("/api/events", content=bodies[0], headers={"content-type": "application/json"})
    resend_s = time.perf_counter() - t1
    figures["resent_first_batch"] = {
        "status": again.status_code,
        "answer": again.json() if again.status_code == 200 else again.text[:300],
        "seconds": round(resend_s, 3),
    }
    resend_ok = again.status_code == 200 and again.json().get("duplicates") == bounds[0][1] - bounds[0][0]
    check = compare_stats(reduce_events(accepted_events(ev, bounds, ok)), read_stats(db, created["id"]))
    figures.update(
        {
            "experiment": key,
            "users": users,
            "event_mix": dict(zip([*COMPONENTS, "revenue covariate"], KIND_SHARE, strict=True)),
            "bodies_prepared_s": round(prepared, 2),
            "body_mb": round(sum(map(len, bodies)) / 2**20, 1),
            "statistics_check": check,
            "errors": figures["errors"]
            + (not check["ok"])
            + (not resend_ok)
            + (figures["accepted"] != sum(bounds[i][1] - bounds[i][0] for i in ok))
            + (figures["duplicates"] != 0),
        }
    )
    return figures


# ---------------------------------------------------------------------------------------------
# analysis


def drain(api: Api, key: str, limit_s: float = 1800) -> float:
    """Read the results until no accepted event is left out of them (each read folds for a few
    seconds); returns how long that took."""
    t0 = time.perf_counter()
    while api.results(key).get("pending_events", 0):
        if time.perf_counter() - t0 > limit_s:
            raise RuntimeError(f"events of {key} still pending after {limit_s:g} s")
    return round(time.perf_counter() - t0, 2)


def time_results(api: Api, key: str, calls: int, warmup: int = 3) -> dict[str, Any]:
    for _ in range(warmup):
        api.results(key)
    before = machine_state()
    samples, errors = [], 0
    for _ in range(calls):
        t0 = time.perf_counter()
        r = api.http.get(f"/api/experiments/{key}/results")
        samples.append(time.perf_counter() - t0)
        errors += r.status_code != 200
    return {
        "calls": calls,
        **ms_stats(samples),
        "errors": errors,
        "answer_bytes": len(r.content),
        "machine_before": before,
        "machine_after": machine_state(),
    }


def analysis_scenario(
    api: Api, cpu: CpuMeter, db: Path | str, args: argparse.Namespace, seq_rate: float | None
) -> dict[str, Any]:
    key = "bench-analysis"
    created = api.experiment(key)
    definition = api.definition(key)
    t0 = time.perf_counter()
    assigned = assign_users(definition, args.analysis_users)
    ev = make_events(args.analysis_events, args.analysis_users, 7, assigned)
    generated_s = time.perf_counter() - t0
    out: dict[str, Any] = {
        "experiment": key,
        "events": len(ev),
        "users": args.analysis_users,
        "generated_s": round(generated_s, 2),
    }
    # 1. a sample over HTTP, checked against the reduction
    sample = min(args.analysis_sample, len(ev))
    bounds = [(s, min(s + args.batch, sample)) for s in range(0, sample, args.batch)]
    bodies = [encode_batch(ev, s, e, key, f"{key}-") for s, e in bounds]
    print(f"  sample: {sample:,} events over HTTP ...", flush=True)
    out["sample_ingest"], ok = post_batches(
        api.uri, bodies.__getitem__, len(bodies), 1, [e - s for s, e in bounds], cpu
    )
    del bodies
    head = accepted_events(ev.head(sample), bounds, ok)
    out["sample_drained_after_s"] = drain(api, key)  # a results read folds what is still pending
    out["sample_statistics_check"] = compare_stats(reduce_events(head), read_stats(db, created["id"]))
    out["results_at_sample"] = time_results(api, key, args.analysis_calls)
    out["results_at_sample"]["events"] = sample
    # 2. the rest: over HTTP if that fits the budget, else the sufficient statistics of all events
    rate = seq_rate or out["sample_ingest"]["events_per_s"] or 1.0
    projected = (len(ev) - sample) / rate
    out["projected_http_ingest_s"] = round(projected, 1)
    out["real_ingest_budget_s"] = args.real_ingest_budget
    if projected <= args.real_ingest_budget:
        rest = [(s, min(s + args.batch, len(ev))) for s in range(sample, len(ev), args.batch)]
        print(f"  rest: {len(ev) - sample:,} events over HTTP (projected {projected:.0f} s) ...", flush=True)
        out["rest_ingest"], _ = post_batches(
            api.uri,
            lambda i: encode_batch(ev, rest[i][0], rest[i][1], key, f"{key}-"),
            len(rest),
            args.ingest_clients,
            [e - s for s, e in rest],
            cpu,
        )
        out["drained_after_s"] = drain(api, key)
        out["how"] = (
            f"all {len(ev):,} events ingested over HTTP (POST /api/events, batches of {args.batch:,}); "
            f"the folders had folded them all {out['drained_after_s']:g} s after the last answer"
        )
        full_check = compare_stats(reduce_events(ev), read_stats(db, created["id"]))
    else:
        t1 = time.perf_counter()
        stats, exposures = reduce_events(ev)
        reduced_s = time.perf_counter() - t1
        wrote_s = write_stats(db, created["id"], stats, exposures)
        out["how"] = (
            f"the first {sample:,} events ingested over HTTP (one client) and checked; then, since HTTP "
            "ingestion of "
            f"the other {len(ev) - sample:,} would take about {projected:,.0f} s at the measured "
            f"{rate:,.0f} events/s (budget {args.real_ingest_budget:g} s), the experiment's metric_stats "
            f"and exposure_counts rows were replaced by the sufficient statistics of all {len(ev):,} "
            "events, computed with the numpy reduction that matched the service on every HTTP-ingested "
            "experiment (raw events and user_metrics rows were not written: analysis reads neither)"
        )
        out["reduction_s"] = round(reduced_s, 2)
        out["stats_write_s"] = round(wrote_s, 3)
        full_check = compare_stats((stats, exposures), read_stats(db, created["id"]))
    out["full_statistics_check"] = full_check
    answer = api.results(key)
    want_exposed = reduce_events(ev)[1] if "rest_ingest" in out else exposures
    got_exposed = {v["name"]: v["exposures"] for v in answer["variants"]}
    out["results_exposures"] = got_exposed
    out["results_exposures_ok"] = got_exposed == {v["name"]: want_exposed.get(v["name"], 0) for v in VARIANTS}
    print(f"  timing results at {len(ev):,} events ...", flush=True)
    out["results_at_full"] = time_results(api, key, args.analysis_calls)
    out["results_at_full"]["events"] = len(ev)
    out["comparisons"] = sum(len(m["comparisons"]) for m in answer["metrics"])
    out["primary"] = next(
        (
            {k: c.get(k) for k in ("variant", "test", "rel_lift", "p_value", "adjusted_p_value")}
            for m in answer["metrics"]
            if m["primary"]
            for c in m["comparisons"][:1]
        ),
        None,
    )
    out["errors"] = (
        out["sample_ingest"]["errors"]
        + (not out["sample_statistics_check"]["ok"])
        + (not full_check["ok"])
        + (not out["results_exposures_ok"])
        + out["results_at_sample"]["errors"]
        + out["results_at_full"]["errors"]
        + (out.get("rest_ingest", {}).get("errors", 0))
    )
    return out


# ---------------------------------------------------------------------------------------------
# py-spy


class Profile(PySpy):
    """py-spy on the service process, summarized for this service."""

    def stop(self) -> dict[str, Any]:
        return self.finish(summarize_profile)


AREAS = (
    ("exposure flush (ExposureBuffer.flush)", ("ExposureBuffer.flush",)),
    ("definition reload (DefinitionCache.load)", ("DefinitionCache.load",)),
    ("event ingestion (post_events)", ("post_events",)),
    ("results (experiment_results)", ("experiment_results",)),
    ("route handler (route, RouteFastPath)", ("route (ab_testing/api/routing.py", "ab_testing/fastpath.py")),
    (
        "request/response around the handlers (uvicorn, starlette, fastapi, middleware)",
        (
            "RequestResponseCycle.",
            "starlette/",
            "fastapi/",
            "mlops_kit/observability.py",
            "mlops_kit/limits.py",
        ),
    ),
    ("event loop, other (uvicorn, asyncio)", ("Server.run (",)),
    ("anyio threads between jobs", ("WorkerThread.run (",)),
)
OWN_CODE = ("ab_testing/", "mlops_kit/", "mlops_client/")
ENTRY = ("ab_testing/__main__.py", "serve (mlops_kit/app.py")
LINE = re.compile(r":\d+\)$")


def summarize_profile(raw: str, top: int = 25) -> dict[str, Any]:
    """Shares of the samples: by area, by frame of our own code (inclusive, per line and per
    function), and by leaf frame (self)."""
    total = 0
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        if frames[-1].startswith("Runner.run (asyncio/runners.py"):
            area = "event loop in uvloop's C code (socket I/O, or waiting for it)"
        else:
            area = next((label for label, markers in AREAS if any(m in stack for m in markers)), "other")
        areas[area] += n
        own[frames[-1]] += n
        mine = {f for f in frames if any(p in f for p in OWN_CODE) and not any(e in f for e in ENTRY)}
        for frame in mine:
            inclusive[frame] += n
        for function in {LINE.sub(")", f) for f in mine}:
            functions[function] += n

    def share(counter: collections.Counter[str], k: int) -> list[dict[str, Any]]:
        return [
            {"frame": f, "samples": n, "percent": round(100 * n / total, 1)}
            for f, n in counter.most_common(k)
        ]

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "areas": {k: {"samples": n, "percent": round(100 * n / total, 1)} for k, n in areas.most_common()},
        "own_code_functions": share(functions, top),
        "own_code_lines": share(inclusive, top),
        "self": share(own, 15),
    }


def profile(py_spy: str, pid: int, where: Path, name: str, rate: int, scenario: Any) -> dict[str, Any]:
    print(f"profiling {name} ...", flush=True)
    where.mkdir(parents=True, exist_ok=True)
    prof = Profile(py_spy, pid, where / f"{name}.raw", rate)
    try:
        figures = scenario()
    finally:
        summary = prof.stop()
    return {"rate_hz": rate, "figures_while_profiled": _headline(figures), **summary}


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    keys = ("routes_per_s", "events_per_s", "p50_ms", "p99_ms", "errors", "server_cpu_share")
    return {k: figures[k] for k in keys if k in figures}


def server_errors(server: Server) -> dict[str, Any]:
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return {}
    errors = [line for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback")]
    return {"error_lines": len(errors), "first": [e[:300] for e in errors[:5]]}


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes; print only (unless --write)")
    parser.add_argument("--write", action="store_true", help="with --quick: write the results files anyway")
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--only", nargs="+", choices=["route", "eval", "ingest", "analysis"])
    parser.add_argument("--route-requests", type=int, help="sequential routes (default 5000; quick 500)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent route connections")
    parser.add_argument("--duration", type=float, help="seconds of concurrent routing (default 5; quick 1)")
    parser.add_argument(
        "--eval-calls", type=int, help="users per local-evaluation pass (default 200k; quick 20k)"
    )
    parser.add_argument("--events", type=int, help="events per ingestion run (default 500k; quick 10k)")
    parser.add_argument("--users", type=int, default=200_000, help="users the ingested events come from")
    parser.add_argument("--batch", type=int, default=5000, help="events per POST")
    parser.add_argument("--ingest-clients", type=int, default=4, help="concurrent ingestion clients")
    parser.add_argument("--analysis-events", type=int, help="events of the analysed experiment (default 10M)")
    parser.add_argument("--analysis-users", type=int, help="its users (default 1M; quick 20k)")
    parser.add_argument("--analysis-sample", type=int, help="of them over HTTP (default 100k; quick 5k)")
    parser.add_argument("--analysis-calls", type=int, help="timed results calls (default 50; quick 10)")
    parser.add_argument(
        "--real-ingest-budget",
        type=float,
        help="ingest all analysis events over HTTP if the measured rate does it within this many seconds "
        "(default 300; quick 0)",
    )
    parser.add_argument(
        "--database-url",
        help="run the service on this (empty) PostgreSQL database instead of its embedded SQLite",
    )
    parser.add_argument(
        "--service-env",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="settings of the service under test, e.g. MLOPS_AB_TESTING_FOLD_SHARDS=1 (recorded)",
    )
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile the scenarios that missed")
    parser.add_argument("--py-spy-rate", type=int, default=200, help="samples per second")
    parser.add_argument("--profile-all", action="store_true", help="with --py-spy: profile every scenario")
    parser.add_argument("--profile-dir", help="keep py-spy's raw stacks (collapsed format) there")
    parser.add_argument("--startup-timeout", type=float, default=120)
    args = parser.parse_args()
    quick = args.quick
    args.route_requests = args.route_requests or (500 if quick else 5000)
    args.duration = args.duration or (1.0 if quick else 5.0)
    args.eval_calls = args.eval_calls or (20_000 if quick else 200_000)
    args.events = args.events or (10_000 if quick else 500_000)
    args.analysis_events = args.analysis_events or (200_000 if quick else ANALYSIS_TARGET_EVENTS)
    args.analysis_users = args.analysis_users or (20_000 if quick else 1_000_000)
    args.analysis_sample = args.analysis_sample or (5_000 if quick else 100_000)
    args.analysis_calls = args.analysis_calls or (10 if quick else 50)
    if args.real_ingest_budget is None:
        args.real_ingest_budget = 0.0 if quick else 300.0
    if quick:
        args.users = min(args.users, 20_000)
    to_files = not args.no_write and (not quick or args.write)
    only = set(args.only or ["route", "eval", "ingest", "analysis"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "source": source_state(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu_calibration_s": cpu_calibration(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "config": {
            "quick": quick,
            "route_requests": args.route_requests,
            "route_clients": args.clients,
            "duration_s": args.duration,
            "eval_calls": args.eval_calls,
            "events": args.events,
            "users": args.users,
            "batch": args.batch,
            "ingest_clients": args.ingest_clients,
            "analysis_events": args.analysis_events,
            "analysis_users": args.analysis_users,
            "analysis_sample": args.analysis_sample,
            "analysis_calls": args.analysis_calls,
            "real_ingest_budget_s": args.real_ingest_budget,
            "variants": VARIANTS,
            "metrics": METRICS,
            "targets": {
                "route_p99_ms": f"< {TARGET_ROUTE_P99_MS:g}",
                "routes_per_s": f">= {TARGET_ROUTES_PER_S:g}",
                "local_eval_us": f"< {TARGET_EVAL_US:g}",
                "events_per_s": f">= {TARGET_EVENTS_PER_S:g}",
                "analysis_ms_at_10M_events": f"< {TARGET_ANALYSIS_MS:g}",
            },
        },
        "scenarios": {},
    }
    sc = results["scenarios"]
    with tempfile.TemporaryDirectory(prefix="ab-bench-") as tmp:
        workdir = Path(tmp)
        extra_env = dict(item.split("=", 1) for item in args.service_env)
        results["config"]["service_env"] = args.service_env
        results["config"]["storage"] = "postgres" if args.database_url else "sqlite"
        if args.database_url:
            extra_env["MLOPS_DATABASE_URL"] = args.database_url
        server, results["config"]["server"] = start_server(workdir, args.startup_timeout, extra_env)
        assert server.proc is not None
        cpu = CpuMeter(server.proc.pid)
        db: Path | str = args.database_url or database_file(workdir)
        api = Api(server.uri)
        try:
            route_key = "bench-route"
            api.experiment(route_key)
            definition = api.definition(route_key)
            if "route" in only:
                print(f"route latency: {args.route_requests:,} sequential ...", flush=True)
                sc["route_latency"] = route_latency(api, route_key, args.route_requests, 500, definition)
                sc["route_latency_lean"] = route_latency_raw(api.uri, route_key, args.route_requests)
                print(f"route throughput: {args.clients} connections x {args.duration:g} s ...", flush=True)
                sc["route_throughput"] = {
                    client: route_throughput(api, route_key, args.clients, args.duration, cpu, client)
                    for client in ("lean", "httpx", "httpx_threads")
                }
            if "eval" in only:
                print(f"local evaluation: {args.eval_calls:,} calls x 5 ...", flush=True)
                sc["local_evaluation"] = local_evaluation(api, route_key, args.eval_calls, 5)
            seq_rate = None
            if "ingest" in only:
                print(f"ingestion: {args.events:,} events, 1 client ...", flush=True)
                sc["ingest_sequential"] = ingest_scenario(
                    api, cpu, db, "bench-ingest-seq", args.events, args.users, args.batch, 1, 1
                )
                seq = sc["ingest_sequential"]
                seq_rate = seq.get("folded_events_per_s") or seq["events_per_s"]
                print(f"ingestion: {args.events:,} events, {args.ingest_clients} clients ...", flush=True)
                sc["ingest_concurrent"] = ingest_scenario(
                    api,
                    cpu,
                    db,
                    "bench-ingest-conc",
                    args.events,
                    args.users,
                    args.batch,
                    args.ingest_clients,
                    2,
                )
            if "analysis" in only:
                print(f"analysis: {args.analysis_events:,} events ...", flush=True)
                sc["analysis"] = analysis_scenario(api, cpu, db, args, seq_rate)
                if "ingest_sequential" in sc:
                    fig = time_results(api, "bench-ingest-seq", args.analysis_calls)
                    fig["events"] = sc["ingest_sequential"]["accepted"]
                    sc["ingest_sequential"]["results"] = fig
            if args.py_spy:
                results["profiles"] = run_profiles(api, cpu, db, server, args, workdir, results)
        finally:
            api.close()
            results["server_errors"] = server_errors(server)
            server.stop()
    results["cpu_calibration_after_s"] = cpu_calibration()
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    errors = 0
    for key, fig in sc.items():
        if key == "route_throughput":
            errors += sum(f["errors"] for f in fig.values())
        elif key == "route_latency":
            errors += fig["errors"] + fig["answers_differing_from_local_evaluate"]
        elif isinstance(fig, dict):
            errors += int(fig.get("errors", 0))
    results["errors"] = errors
    print(write(results, to_files))
    return 1 if errors else 0


def run_profiles(
    api: Api,
    cpu: CpuMeter,
    db: Path | str,
    server: Server,
    args: argparse.Namespace,
    workdir: Path,
    results: dict,
) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    where = Path(args.profile_dir) if args.profile_dir else workdir / "profiles"
    missed = {row["scenario"] for row in headline(results) if row["met"] is False}
    everything = args.profile_all
    out: dict[str, Any] = {}
    sc = results["scenarios"]
    if "route_latency" in sc and (everything or "route" in missed):
        out["route_sequential"] = profile(
            args.py_spy,
            pid,
            where,
            "route_sequential",
            args.py_spy_rate,
            lambda: route_latency(
                api, "bench-route", args.route_requests, 100, api.definition("bench-route")
            ),
        )
        out["route_throughput"] = profile(
            args.py_spy,
            pid,
            where,
            "route_throughput",
            args.py_spy_rate,
            lambda: route_throughput(api, "bench-route", args.clients, args.duration, cpu, "lean"),
        )
    if "ingest_sequential" in sc and (everything or "ingest" in missed):
        n = min(args.events, 100_000)
        out["ingest_sequential"] = profile(
            args.py_spy,
            pid,
            where,
            "ingest_sequential",
            args.py_spy_rate,
            lambda: ingest_scenario(api, cpu, db, "bench-ingest-prof", n, args.users, args.batch, 1, 3),
        )
    if "analysis" in sc and (everything or "analysis" in missed):
        out["analysis"] = profile(
            args.py_spy,
            pid,
            where,
            "analysis",
            args.py_spy_rate,
            lambda: time_results(api, "bench-analysis", args.analysis_calls),
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
