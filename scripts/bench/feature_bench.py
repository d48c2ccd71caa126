"""Online feature serving benchmark: Feast's Python feature server and our feature store, side by side.

Both get the same data (N entities `user_id` "u00000".. x 10 features f0..f4 float, f5..f9 int, one
row each) in a Redis online store (the local Redis at 127.0.0.1:6379, DB 14 for Feast and 13 for
ours; only this benchmark's own keys are deleted, before and after: others share this Redis), and
the same requests from the same client code over loopback:

- 1 entity x 10 features and 100 entities x 10 features: p50/p99/mean over --requests requests
  after a warm-up of 200, on one keep-alive connection, entities drawn from one seeded sequence;
  every answer is checked against the data;
- throughput: --concurrency client processes (each its own keep-alive connection) sending the
  1-entity request for --duration seconds; requests per second.

Feast runs from its own virtual environment under --cache-dir (created on first use with
`python3 -m uv venv` + `uv pip install feast[redis]`): a feature repo is generated in a temporary
directory (Parquet FileSource, file offline store, local registry file), `feast apply`,
`feast materialize`, then `feast serve --workers 1`. Ours is `python -m feature_store` from this
repository's .venv, loaded through its HTTP API. The servers run one after the other, never side
by side. Writes scripts/bench/results/feature_serving.json and feature_serving.md.

    uv run python scripts/bench/feature_bench.py [--entities 10000] [--requests 2000] \\
        [--concurrency 8] [--duration 10] [--only both|ours|feast] [--cache-dir .bench]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import benchkit
from benchkit import Server, cpu_calibration, free_port, percentile

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"

VIEW = "fv"
ENTITY = "user"
JOIN_KEY = "user_id"
FLOAT_FEATURES = [f"f{k}" for k in range(5)]
INT_FEATURES = [f"f{k}" for k in range(5, 10)]
FEATURES = FLOAT_FEATURES + INT_FEATURES
REFS = [f"{VIEW}:{name}" for name in FEATURES]
EVENT_TIME = "2026-01-01T00:00:00Z"
WARMUP = 200
BATCH = 100
PUSH_BATCH = 1000
SEED = 20260101
TARGET_P99_1_MS = 2.0
TARGET_P99_100_MS = 10.0
TARGET_THROUGHPUT_RATIO = 3.0
FEAST_PROJECT = "featbench"  # Feast's Redis keys end with the project name
OURS_PREFIX = "bench"
FEAST_MAX_REQUESTS = 0  # gunicorn's max_requests; Feast's default (1000) restarts the worker mid-run


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "mean_ms": round(sum(samples) / len(samples) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


# ---------------------------------------------------------------------------------------------
# the data: the same rows for both systems


def entity_id(i: int) -> str:
    return f"u{i:05d}"


def make_rows(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """One row per entity: f0..f4 floats in [-1000, 1000), f5..f9 ints in [-10^9, 10^9)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {JOIN_KEY: entity_id(i)}
        for name in FLOAT_FEATURES:
            row[name] = rng.uniform(-1000, 1000)
        for name in INT_FEATURES:
            row[name] = rng.randrange(-(10**9), 10**9)
        rows.append(row)
    return rows


def entity_sequences(n_entities: int, count: int, per_request: int, seed: int) -> list[list[str]]:
    """The entities of each request, the same seeded sequence for both systems."""
    rng = random.Random(seed)
    if per_request == 1:
        return [[entity_id(rng.randrange(n_entities))] for _ in range(count)]
    return [[entity_id(i) for i in rng.sample(range(n_entities), per_request)] for _ in range(count)]


# ---------------------------------------------------------------------------------------------
# the client: one keep-alive HTTP/1.1 connection (http.client), the same code for both systems


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None

    def describe(self) -> str:
        text = f"{self.method} {self.path}"
        if self.body is not None:
            body = self.body.decode()
            text += f" {body if len(body) <= 300 else body[:300] + '...'}"
        return text


def json_request(path: str, body: Any) -> Request:
    return Request("POST", path, json.dumps(body, separators=(",", ":")).encode())


class Http:
    """One keep-alive connection; reconnects after a failure (counted by the caller)."""

    def __init__(self, port: int, timeout: float = 60):
        self.port, self.timeout = port, timeout
        self.conn: HTTPConnection | None = None

    def _connect(self) -> HTTPConnection:
        conn = HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def send(self, req: Request) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = self._connect()
        headers = {"Content-Type": "application/json"} if req.body is not None else {}
        try:
            self.conn.request(req.method, req.path, body=req.body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


Parser = Callable[[bytes, list[str]], list[dict[str, Any]]]
Builder = Callable[[list[str]], Request]


def check(parsed: list[dict[str, Any]], ids: list[str], data: dict[str, dict[str, Any]]) -> None:
    """Each entity's 10 values as loaded: floats to 1e-9 relative, ints exactly."""
    if len(parsed) != len(ids):
        raise AssertionError(f"{len(parsed)} entities in the answer, {len(ids)} asked")
    for got, key in zip(parsed, ids, strict=True):
        want = data[key]
        for name in FEATURES:
            value = got.get(name)
            if name in INT_FEATURES:
                ok = isinstance(value, int | float) and value == want[name]
            else:
                ok = isinstance(value, int | float) and math.isclose(value, want[name], rel_tol=1e-9)
            if not ok:
                raise AssertionError(f"{key}.{name}: got {value!r}, expected {want[name]!r}")


def latency(
    http: Http,
    build: Builder,
    parse: Parser,
    sequences: list[list[str]],
    data: dict[str, dict[str, Any]],
    warmup: int = WARMUP,
) -> dict[str, Any]:
    """Each request timed from sending to the answer fully read; every answer checked afterwards."""
    requests = [build(ids) for ids in sequences]
    samples: list[float] = []
    bad: list[dict[str, Any]] = []
    wrong = 0
    for n, (req, ids) in enumerate(zip(requests, sequences, strict=True)):
        t0 = time.perf_counter()
        try:
            status, body = http.send(req)
        except (OSError, HTTPException) as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}".encode()
        elapsed = time.perf_counter() - t0
        if n >= warmup:
            samples.append(elapsed)
        try:
            if status != 200:
                raise AssertionError(f"HTTP {status}")
            check(parse(body, ids), ids, data)
        except Exception as exc:
            wrong += 1
            if len(bad) < 5:
                bad.append(
                    {
                        "request": req.describe(),
                        "status": status,
                        "error": str(exc)[:500],
                        "answer": body[:500].decode(errors="replace"),
                    }
                )
    figures = {
        **summary(samples),
        "warmup": warmup,
        "entities_per_request": len(sequences[0]),
        "checked_answers": len(requests),
        "wrong_answers": wrong,
        "wrong_examples": bad,
        "request_example": requests[0].describe(),
    }
    if wrong:
        raise BenchError(f"{wrong} of {len(requests)} answers were refused or wrong", figures)
    return figures


class BenchError(Exception):
    def __init__(self, message: str, figures: dict[str, Any]):
        super().__init__(message)
        self.figures = figures


def _throughput_worker(port: int, requests: list[Request], duration: float, barrier: Any, out: Any) -> None:
    http = Http(port, timeout=30)
    ok = failed = 0
    samples: list[float] = []
    try:
        for req in requests[:20]:  # connection and first-request costs out of the window
            http.send(req)
        barrier.wait(timeout=120)
        deadline = time.perf_counter() + duration
        i = 0
        while True:
            req = requests[i % len(requests)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, _ = http.send(req)
            except (OSError, HTTPException):
                status = 0
            t1 = time.perf_counter()
            if t1 > deadline:
                break
            samples.append(t1 - t0)
            if status == 200:
                ok += 1
            else:
                failed += 1
        out.put({"ok": ok, "failed": failed, "samples": samples})
    except Exception as exc:
        out.put({"ok": ok, "failed": failed, "samples": samples, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        http.close()


def throughput(port: int, build: Builder, n_entities: int, concurrency: int, duration: float) -> dict:
    """`concurrency` client processes (fork), each its own keep-alive connection and seeded entities."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(concurrency + 1)
    out = ctx.Queue()
    procs = []
    for p in range(concurrency):
        ids = entity_sequences(n_entities, 2000, 1, SEED + 100 + p)
        reqs = [build(x) for x in ids]
        proc = ctx.Process(target=_throughput_worker, args=(port, reqs, duration, barrier, out))
        proc.start()
        procs.append(proc)
    try:
        barrier.wait(timeout=120)
        results = [out.get(timeout=duration + 120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    ok = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    samples = [s for r in results for s in r["samples"]]
    figures = {
        "requests_per_s": round(ok / duration, 1),
        "ok": ok,
        "failed": failed,
        "duration_s": duration,
        "clients": concurrency,
        "client_kind": "processes (fork), one keep-alive http.client connection each",
        "latency_under_load": summary(samples) if samples else None,
        "worker_errors": [r["error"] for r in results if "error" in r],
    }
    if failed or figures["worker_errors"]:
        raise BenchError(f"{failed} failed requests under load; {figures['worker_errors'][:2]}", figures)
    return figures


# ---------------------------------------------------------------------------------------------
# Feast: request, answer, feature repo


def feast_request(ids: list[str]) -> Request:
    return json_request("/get-online-features", {"features": REFS, "entities": {JOIN_KEY: ids}})


def feast_parse(body: bytes, ids: list[str]) -> list[dict[str, Any]]:
    """Feast's columnar answer: metadata.feature_names, results[j].values[i] (entity i, column j)."""
    data = json.loads(body)
    names = [name.split("__")[-1].split(":")[-1] for name in data["metadata"]["feature_names"]]
    columns = data["results"]
    out = []
    for i in range(len(ids)):
        row = {}
        for name, column in zip(names, columns, strict=True):
            status = column.get("statuses", ["PRESENT"] * len(ids))[i]
            row[name] = column["values"][i] if status == "PRESENT" else None
        out.append(row)
    return out


FEAST_REPO_PY = """
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

user = Entity(name="{entity}", join_keys=["{join_key}"], value_type=ValueType.STRING)
source = FileSource(name="bench_source", path={path!r}, timestamp_field="event_timestamp")
fv = FeatureView(
    name="{view}",
    entities=[user],
    ttl=timedelta(days=3650),
    schema=[{fields}],
    online=True,
    source=source,
)
"""

FEAST_PARQUET_PY = """
import json, sys
import pandas as pd
rows = json.load(open(sys.argv[1]))
df = pd.DataFrame(rows)
df["event_timestamp"] = pd.Timestamp(sys.argv[3])
df.to_parquet(sys.argv[2], index=False)
print(len(df), "rows", list(df.dtypes.astype(str)))
"""


def feast_repo(workdir: Path, rows: list[dict[str, Any]], redis_db: int) -> Path:
    repo = workdir / "repo"
    (repo / "data").mkdir(parents=True)
    (workdir / "rows.json").write_text(json.dumps(rows))
    fields = ", ".join(
        [f'Field(name="{n}", dtype=Float64)' for n in FLOAT_FEATURES]
        + [f'Field(name="{n}", dtype=Int64)' for n in INT_FEATURES]
    )
    (repo / "features.py").write_text(
        FEAST_REPO_PY.format(
            entity=ENTITY,
            join_key=JOIN_KEY,
            view=VIEW,
            fields=fields,
            path=str(repo / "data" / "rows.parquet"),
        )
    )
    (repo / "feature_store.yaml").write_text(
        f"project: {FEAST_PROJECT}\n"
        "provider: local\n"
        "registry: data/registry.db\n"
        "online_store:\n"
        "  type: redis\n"
        f'  connection_string: "127.0.0.1:6379,db={redis_db}"\n'
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    return repo


# ---------------------------------------------------------------------------------------------
# ours: loader and request builders (small on purpose: the service's API is being built)


def ours_load(base: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Entity + feature set through the HTTP API, then push (online + offline) in batches of 1000;
    if push is missing, offline rows + a materialization job polled until SUCCEEDED."""
    import httpx

    with httpx.Client(base_url=base, timeout=300) as client:

        def post(path: str, body: Any, ok: tuple[int, ...] = (200, 201, 202)) -> httpx.Response:
            response = client.post(path, json=body)
            if response.status_code not in ok:
                raise RuntimeError(f"POST {path} -> {response.status_code}: {response.text[:800]}")
            return response

        post("/api/entities", {"name": ENTITY, "join_keys": [JOIN_KEY], "value_type": "string"})
        post(
            "/api/feature-sets",
            {
                "name": VIEW,
                "entity": ENTITY,
                "features": [{"name": n, "type": "float"} for n in FLOAT_FEATURES]
                + [{"name": n, "type": "int"} for n in INT_FEATURES],
            },
        )
        batches = [
            [{**row, "event_timestamp": EVENT_TIME} for row in rows[i : i + PUSH_BATCH]]
            for i in range(0, len(rows), PUSH_BATCH)
        ]
        t0 = time.perf_counter()
        first = client.post(f"/api/feature-sets/{VIEW}/push", json={"rows": batches[0]})
        if first.status_code in (200, 201, 202):
            for batch in batches[1:]:
                post(f"/api/feature-sets/{VIEW}/push", {"rows": batch})
            return {
                "how": f"POST /api/feature-sets/{VIEW}/push, {len(batches)} batches of <= {PUSH_BATCH}",
                "load_s": round(time.perf_counter() - t0, 3),
            }
        if first.status_code not in (404, 405):
            raise RuntimeError(f"push -> {first.status_code}: {first.text[:800]}")
        push_refused = f"push -> {first.status_code}"
        t0 = time.perf_counter()
        for batch in batches:
            try:
                post(f"/api/feature-sets/{VIEW}/rows", {"rows": batch})
            except RuntimeError as exc:
                raise RuntimeError(f"{push_refused}: {first.text[:300]}; then {exc}") from None
        ingest_s = time.perf_counter() - t0
        job = post(f"/api/feature-sets/{VIEW}/materialize", {}).json()
        deadline = time.monotonic() + 600
        while True:
            state = client.get(f"/api/materialization-jobs/{job['id']}").json()
            if state.get("status") == "SUCCEEDED":
                break
            if state.get("status") in ("FAILED", "CANCELLED") or time.monotonic() > deadline:
                raise RuntimeError(f"materialization job: {json.dumps(state)[:800]}")
            time.sleep(0.2)
        return {
            "how": f"{push_refused}; POST /api/feature-sets/{VIEW}/rows in {len(batches)} batches, then "
            f"POST /api/feature-sets/{VIEW}/materialize and polling the job until SUCCEEDED",
            "ingest_s": round(ingest_s, 3),
            "load_s": round(time.perf_counter() - t0, 3),
        }


def ours_serve_get(ids: list[str]) -> Request:
    query = urlencode({"entities": ",".join(ids), "features": ",".join(REFS)}, safe=":,")
    return Request("GET", f"/api/features/serve?{query}")


def ours_online_keyed(ids: list[str]) -> Request:
    return json_request("/api/features/online", {"entities": {JOIN_KEY: ids}, "features": REFS})


def ours_online_list(ids: list[str]) -> Request:
    return json_request("/api/features/online", {"entities": ids, "features": REFS})


OURS_SINGLE = {
    "GET serve": ours_serve_get,
    "POST online {join_key: ids}": ours_online_keyed,
    "POST online [ids]": ours_online_list,
}
OURS_BATCH = {"POST online {join_key: ids}": ours_online_keyed, "POST online [ids]": ours_online_list}


SKIP_KEYS = ("statuses", "status", "event_timestamps", "event_timestamp", "timestamps", "metadata")


def _bare(name: str) -> str:
    return name.split(":")[-1].split("__")[-1]


def ours_parse(body: bytes, ids: list[str]) -> list[dict[str, Any]]:
    """Tolerant of the answer's shape: the service's `results: [{"entity", "values", "statuses",
    "event_timestamps"}]`; Feast's columnar form; rows as dicts with the features at any depth or as
    lists in feature order; rows keyed by entity; columns."""
    data = json.loads(body)
    if isinstance(data, dict) and "metadata" in data and "results" in data:
        return feast_parse(body, ids)
    rows: Any = data
    if isinstance(data, dict):
        for key in ("results", "rows", "data", "entities", "features", "values", "items"):
            if key in data:
                rows = data[key]
                break
    if isinstance(rows, dict):
        if all(i in rows for i in ids):
            rows = [rows[i] for i in ids]
        elif rows and all(isinstance(v, list) and len(v) == len(ids) for v in rows.values()):
            rows = [{k: v[j] for k, v in rows.items()} for j in range(len(ids))]
        else:
            rows = [rows]
    if not isinstance(rows, list):
        raise ValueError(f"no rows in the answer: {body[:200]!r}")
    out = []
    for row in rows:
        flat: dict[str, Any] = {}
        if isinstance(row, list) and len(row) == len(FEATURES):
            flat = dict(zip(FEATURES, row, strict=True))
        elif isinstance(row, dict) and isinstance(row.get("values", row.get("features")), dict):
            # {"entity", "values": {name: v}, "statuses": {name: "PRESENT"}, "event_timestamps": {...}}
            values = row.get("values", row.get("features"))
            statuses = row.get("statuses") if isinstance(row.get("statuses"), dict) else {}
            for key, value in values.items():
                if isinstance(value, dict) and "value" in value:
                    value = value["value"]
                flat[_bare(key)] = value if statuses.get(key, "PRESENT") == "PRESENT" else None
        elif isinstance(row, dict):
            stack = [{k: v for k, v in row.items() if k not in SKIP_KEYS}]
            while stack:
                for key, value in stack.pop().items():
                    if isinstance(value, dict) and "value" in value:
                        flat[_bare(key)] = value["value"]
                    elif isinstance(value, dict) and key not in SKIP_KEYS:
                        stack.append(value)
                    else:
                        flat.setdefault(_bare(key), value)
        out.append(flat)
    return out


def choose_request(
    http: Http, candidates: dict[str, Builder], ids: list[str], data: dict[str, dict[str, Any]]
) -> tuple[str | None, list[dict[str, Any]]]:
    """The first candidate request form the service answers correctly; every probe recorded."""
    probes = []
    for name, build in candidates.items():
        req = build(ids)
        try:
            status, body = http.send(req)
            if status != 200:
                raise AssertionError(f"HTTP {status}")
            check(ours_parse(body, ids), ids, data)
        except Exception as exc:
            answer = locals().get("body", b"")
            probes.append(
                {
                    "form": name,
                    "request": req.describe(),
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                    "answer": answer[:400].decode(errors="replace") if isinstance(answer, bytes) else "",
                }
            )
            continue
        probes.append(
            {
                "form": name,
                "request": req.describe(),
                "ok": True,
                "answer": body[:400].decode(errors="replace"),
            }
        )
        return name, probes
    return None, probes


# ---------------------------------------------------------------------------------------------
# the floor: the same client against a stub that answers at once with a canned answer

STUB_SERVER = r"""
import asyncio, sys

port, small, big = int(sys.argv[1]), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()

def answer(body):
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % len(body) + body

SMALL, BIG = answer(small), answer(big)

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            sizes = [int(h.split(b":")[1]) for h in lines if h.lower().startswith(b"content-length:")]
            if sizes and sizes[0]:
                await reader.readexactly(sizes[0])
            writer.write(BIG if b"/floor/100" in lines[0] else SMALL)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def canned_answer(ids: list[str], data: dict[str, dict[str, Any]]) -> bytes:
    """An answer of the service's shape, for the stub."""
    results = [
        {
            "entity": key,
            "values": {name: data[key][name] for name in FEATURES},
            "statuses": dict.fromkeys(FEATURES, "PRESENT"),
            "event_timestamps": dict.fromkeys(FEATURES, EVENT_TIME),
        }
        for key in ids
    ]
    return json.dumps({"features": FEATURES, "feature_refs": REFS, "results": results}).encode()


def client_floor(plan: Plan, workdir: Path) -> dict[str, Any]:
    """Both latency loops and the throughput run against a one-process asyncio stub answering at once
    with a canned answer of the right size: loopback + this client + the least a Python server does."""
    workdir.mkdir(parents=True)
    (workdir / "small.json").write_bytes(canned_answer(plan.singles[0], plan.data))
    (workdir / "big.json").write_bytes(canned_answer(plan.batches[0], plan.data))
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        STUB_SERVER,
        str(port),
        str(workdir / "small.json"),
        str(workdir / "big.json"),
    ]
    server = Server("stub", cmd, clean_env(), port, workdir / "server.log", workdir)
    out: dict[str, Any] = {
        "what": "the same client code against a one-process asyncio stub that answers every request at "
        "once with a canned answer (of the service's shape, 1 or 100 entities): loopback HTTP + the client "
        "+ the least any Python server costs on this machine at this time; answers not checked",
    }
    small = Request("GET", "/floor/1?" + ours_serve_get(plan.singles[0]).path.split("?", 1)[1])
    big = json_request("/floor/100", {"entities": {JOIN_KEY: plan.batches[0]}, "features": REFS})
    a = plan.args

    def timed_loop(req: Request) -> dict[str, Any]:
        http = Http(port)
        samples = []
        try:
            for n in range(len(plan.singles)):
                t0 = time.perf_counter()
                status, _ = http.send(req)
                if n >= WARMUP:
                    samples.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"stub answered {status}")
        finally:
            http.close()
        return summary(samples)

    try:
        out["startup_s"] = server.start(30)
        run_step(out, "latency_1", lambda: timed_loop(small))
        run_step(out, "latency_100", lambda: timed_loop(big))
        run_step(
            out,
            "throughput_1",
            lambda: throughput(port, lambda ids: small, a.entities, a.concurrency, a.duration),
        )
    finally:
        server.stop()
    return out


# ---------------------------------------------------------------------------------------------
# servers, venvs, Redis


def clean_env() -> dict[str, str]:
    return benchkit.clean_env(("FEAST_",), FEAST_USAGE="False", DO_NOT_TRACK="true")


def uv_command() -> list[str]:
    return benchkit.uv_command("Feast's venv")


def venv_feast_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('feast'))"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_feast_venv(cache: Path, version: str | None) -> tuple[Path, dict[str, Any]]:
    """<cache>/feast-venv with feast[redis] (the given version, or the latest when none), reused
    when it already has it."""
    venv = cache / "feast-venv"
    python = venv / "bin" / "python"
    found = venv_feast_version(python)
    if found and (version is None or found == version):
        return python, {"reused": True, "feast": found}
    uv, env = uv_command(), clean_env()
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not python.exists():
        print(f"creating {venv}", flush=True)
        subprocess.run([*uv, "venv", "--clear", "--python", "3.11", str(venv)], check=True, env=env)
    spec = f"feast[redis]=={version}" if version else "feast[redis]"
    print(f"installing {spec} into {venv}", flush=True)
    subprocess.run([*uv, "pip", "install", "--python", str(python), spec], check=True, env=env)
    found = venv_feast_version(python)
    if found is None or (version and found != version):
        raise RuntimeError(f"{venv} has feast {found}, wanted {version or 'any'}")
    return python, {"reused": False, "install_s": round(time.perf_counter() - t0, 1), "feast": found}


def redis_db(db: int) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=6379, db=db)


def count_keys(db: int, pattern: str, delete: bool = False) -> int:
    """The keys of this benchmark only (others may share the DB: the project's tests use DB 15 with
    their own prefixes), counted or deleted; never a FLUSHDB."""
    client = redis_db(db)
    try:
        found = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            found += 1
            if delete:
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch = []
        if batch:
            client.delete(*batch)
        return found
    finally:
        client.close()


def clear_keys(db: int, pattern: str, label: str) -> int:
    found = count_keys(db, pattern, delete=True)
    if found:
        print(f"{label}: deleted {found} keys matching {pattern!r} in Redis DB {db}", flush=True)
    return found


def run_step(out: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> bool:
    started = time.perf_counter()
    try:
        out.setdefault("steps", {})[name] = fn()
    except Exception as exc:
        if isinstance(exc, BenchError):
            out.setdefault("steps", {})[name] = exc.figures
        out.setdefault("errors", []).append(
            {
                "step": name,
                "error": f"{type(exc).__name__}: {exc}"[:3000],
                "where": traceback.format_exc(limit=4)[-1500:],
            }
        )
        print(f"  {name}: FAILED: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        return False
    figures = out["steps"][name]
    shown = {
        k: figures[k] for k in ("p50_ms", "p99_ms", "mean_ms", "requests_per_s", "load_s") if k in figures
    }
    print(f"  {name}: {time.perf_counter() - started:.1f} s {shown}", flush=True)
    return True


# ---------------------------------------------------------------------------------------------
# the two systems


@dataclass
class Plan:
    rows: list[dict[str, Any]]
    data: dict[str, dict[str, Any]]
    singles: list[list[str]]
    batches: list[list[str]]
    args: argparse.Namespace


def measure(
    out: dict[str, Any], port: int, single: Builder, batch: Builder, parse: Parser, plan: Plan
) -> None:
    http = Http(port)
    try:
        run_step(out, "latency_1", lambda: latency(http, single, parse, plan.singles, plan.data))
        run_step(out, "latency_100", lambda: latency(http, batch, parse, plan.batches, plan.data))
    finally:
        http.close()
    a = plan.args
    run_step(out, "throughput_1", lambda: throughput(port, single, a.entities, a.concurrency, a.duration))


class System:
    """One system under test: prepared (and loaded) once, then its server started for each round."""

    key = ""
    label = ""

    def __init__(self, plan: Plan, workdir: Path):
        self.plan, self.workdir, self.a = plan, workdir, plan.args
        self.out: dict[str, Any] = {"rounds": []}
        self.server: Server | None = None
        self.single: Builder | None = None
        self.batch: Builder | None = None
        self.parse: Parser = ours_parse

    def fail(self, step: str, exc: Exception) -> None:
        self.out.setdefault("errors", []).append(
            {"step": step, "error": f"{type(exc).__name__}: {exc}"[-3000:]}
        )
        print(f"{self.key}: FAILED: {str(exc)[:500]}", flush=True)

    def prepare(self) -> bool:
        return True

    def start(self, round_out: dict[str, Any]) -> bool:
        """Starts the server; False (with the error recorded) when it can't be measured."""
        raise NotImplementedError

    def run_round(self, index: int) -> None:
        round_out: dict[str, Any] = {"round": index + 1, "cpu_calibration_s": cpu_calibration()}
        try:
            if self.start(round_out):
                assert self.single is not None and self.batch is not None and self.server is not None
                measure(round_out, self.server.port, self.single, self.batch, self.parse, self.plan)
        except Exception as exc:
            round_out.setdefault("errors", []).append(
                {"step": "start", "error": f"{type(exc).__name__}: {exc}"[-3000:]}
            )
            print(f"{self.key}: FAILED: {str(exc)[:500]}", flush=True)
        finally:
            self.stop(round_out)
        round_out["cpu_calibration_after_s"] = cpu_calibration()
        for error in round_out.get("errors", []):
            self.out.setdefault("errors", []).append({**error, "step": f"round {index + 1}: {error['step']}"})
        self.out["rounds"].append(round_out)

    def stop(self, round_out: dict[str, Any]) -> None:
        server, self.server = self.server, None
        if server is not None:
            if round_out.get("errors"):
                self.out["server_log_tail"] = server.log_tail()
            server.stop()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            clear_keys(self.redis_db, self.key_pattern, self.key)

    @property
    def redis_db(self) -> int:
        raise NotImplementedError

    key_pattern = ""


class Feast(System):
    key, label = "feast", "Feast"

    @property
    def redis_db(self) -> int:
        return int(self.a.feast_redis_db)

    key_pattern = f"*{FEAST_PROJECT}"

    def prepare(self) -> bool:
        a, out, workdir = self.a, self.out, self.workdir
        try:
            python, install = ensure_feast_venv(a.cache_dir, a.feast_version)
            out["install"] = install
            self.bin_dir = bin_dir = python.parent
            self.env = env = clean_env()
            env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
            workdir.mkdir(parents=True)
            out["redis_keys_before"] = clear_keys(self.redis_db, self.key_pattern, "feast")
            self.repo = repo = feast_repo(workdir, self.plan.rows, self.redis_db)
        except Exception as exc:
            self.fail("setup", exc)
            return False
        setup: dict[str, Any] = {}

        def run(label: str, cmd: list[str]) -> None:
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
            setup[f"{label}_s"] = round(time.perf_counter() - t0, 2)
            if done.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(cmd)} -> {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
                )

        def load() -> dict[str, Any]:
            rows_json, parquet = str(workdir / "rows.json"), str(repo / "data" / "rows.parquet")
            run("parquet", [str(python), "-c", FEAST_PARQUET_PY, rows_json, parquet, EVENT_TIME])
            run("apply", [str(bin_dir / "feast"), "apply"])
            run(
                "materialize",
                [str(bin_dir / "feast"), "materialize", "2025-12-31T00:00:00", "2026-01-02T00:00:00"],
            )
            setup["redis_keys"] = count_keys(self.redis_db, self.key_pattern)
            setup["load_s"] = round(setup["apply_s"] + setup["materialize_s"], 2)
            return setup

        if not run_step(out, "load", load):
            return False
        self.single = self.batch = feast_request
        self.parse = feast_parse
        out["request"] = feast_request(self.plan.singles[0]).describe()
        out["config"] = {
            "command": f"<venv>/bin/feast serve --host 127.0.0.1 --port <free> --workers 1 --no-access-log "
            f"--max-requests {FEAST_MAX_REQUESTS}  (cwd: the generated repo)",
            "feast": install["feast"],
            "python": subprocess.run(
                [str(python), "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "server": "gunicorn with 1 uvicorn worker (Feast's own start-up on Linux); access log off; "
            f"--max-requests {FEAST_MAX_REQUESTS} (Feast's default 1000 recycles the worker every ~1000 "
            "requests, a ~1.5 s stall each time here, several within one measurement); "
            "registry_ttl_sec 60 (default)",
            "repo": "feature_store.yaml: provider local, registry data/registry.db (file), offline_store "
            f"file, online_store redis 127.0.0.1:6379 db={self.redis_db}, "
            "entity_key_serialization_version 3; FileSource over one Parquet file; Entity user "
            "(join key user_id, STRING); FeatureView fv, ttl 3650 days, f0..f4 Float64, f5..f9 Int64",
            "load": "feast apply; feast materialize 2025-12-31T00:00:00 2026-01-02T00:00:00",
        }
        return True

    def start(self, round_out: dict[str, Any]) -> bool:
        port = free_port()
        cmd = [str(self.bin_dir / "feast"), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--no-access-log", "--max-requests", str(FEAST_MAX_REQUESTS)]  # fmt: skip
        log = self.workdir / f"server-{len(self.out['rounds']) + 1}.log"
        self.server = Server("feast serve", cmd, self.env, port, log, self.repo)
        round_out["startup_s"] = self.server.start(self.a.startup_timeout)
        print(f"feast: healthy after {round_out['startup_s']} s", flush=True)
        return True


class Ours(System):
    key, label = "ours", "Ours"

    @property
    def redis_db(self) -> int:
        return int(self.a.ours_redis_db)

    key_pattern = f"{OURS_PREFIX}:*"

    def prepare(self) -> bool:
        a, workdir = self.a, self.workdir
        try:
            workdir.mkdir(parents=True)
            self.out["redis_keys_before"] = clear_keys(self.redis_db, self.key_pattern, "ours")
        except Exception as exc:
            self.fail("setup", exc)
            return False
        python = ROOT / ".venv" / "bin" / "python"
        self.python = python if python.exists() else Path(sys.executable)
        self.env = env = clean_env()
        env.update(
            {
                "MLOPS_DATA_DIR": str(workdir / "data"),
                "MLOPS_FEATURE_STORE_ONLINE_STORE": "redis",
                "MLOPS_FEATURE_STORE_REDIS_URL": f"redis://127.0.0.1:6379/{a.ours_redis_db}",
                "MLOPS_FEATURE_STORE_REDIS_PREFIX": OURS_PREFIX,
                "MLOPS_LOG_JSON": "false",
                "MLOPS_LOG_LEVEL": "warning",
                "MLOPS_ENV_FILE": "",
            }
        )
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "services/feature_store", "libs"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        shown = {k: v.replace(str(workdir), "<tmp>") for k, v in env.items() if k.startswith("MLOPS_")}
        self.out["config"] = {
            "command": "python -m feature_store",
            "working_tree": "clean"
            if not dirty
            else f"{len(dirty)} uncommitted paths under services/feature_store or libs (measured as is)",
            "env": {"MLOPS_FEATURE_STORE_PORT": "<free>", **shown},
            "server": "uvicorn via mlops_kit.app.serve, 1 process (its default)",
            "python": platform.python_version(),
            "commit": commit,
        }
        print(f"ours: feature_store at {commit}", flush=True)
        return True

    def start(self, round_out: dict[str, Any]) -> bool:
        port = free_port()
        env = {**self.env, "MLOPS_FEATURE_STORE_PORT": str(port)}
        log = self.workdir / f"server-{len(self.out['rounds']) + 1}.log"
        cmd = [str(self.python), "-m", "feature_store"]
        self.server = server = Server("feature_store", cmd, env, port, log, self.workdir)
        round_out["startup_s"] = server.start(self.a.startup_timeout)
        print(f"ours: healthy after {round_out['startup_s']} s", flush=True)
        if self.single is not None:
            return True  # loaded and probed in the first round; the data stays in Redis + the data dir

        def load() -> dict[str, Any]:
            figures = ours_load(server.uri, self.plan.rows)
            figures["redis_keys"] = count_keys(self.redis_db, self.key_pattern)
            return figures

        if not run_step(self.out, "load", load):
            return False
        http = Http(port)
        try:
            single_name, probes1 = choose_request(http, OURS_SINGLE, self.plan.singles[0], self.plan.data)
            batch_name, probes100 = choose_request(http, OURS_BATCH, self.plan.batches[0], self.plan.data)
        finally:
            http.close()
        self.out["request_forms"] = {
            "1_entity": single_name,
            "100_entities": batch_name,
            "probes": probes1 + probes100,
        }
        if single_name is None or batch_name is None:
            failed = [p for p in probes1 + probes100 if not p["ok"]]
            raise RuntimeError(
                "no serving request form answered correctly: "
                + "; ".join(f"{p['form']}: {p['error']} {p['answer'][:150]}" for p in failed)
            )
        self.single, self.batch = OURS_SINGLE[single_name], OURS_BATCH[batch_name]
        self.out["request"] = self.single(self.plan.singles[0]).describe()
        return True


def combine(system: dict[str, Any]) -> None:
    """The system's figures: the median over rounds of each figure (every round kept in `rounds`)."""
    steps = system.setdefault("steps", {})
    for name in ("latency_1", "latency_100", "throughput_1"):
        runs = [r["steps"][name] for r in system["rounds"] if name in r.get("steps", {})]
        if not runs:
            continue
        combined: dict[str, Any] = {k: v for k, v in runs[0].items() if k != "latency_under_load"}
        for field in ("p50_ms", "p99_ms", "mean_ms", "requests_per_s"):
            values = [r[field] for r in runs if r.get(field) is not None]
            if values:
                combined[field] = round(statistics.median(values), 3)
                combined[f"{field}_per_round"] = values
        for field in ("n", "wrong_answers", "failed", "ok", "checked_answers"):
            if any(field in r for r in runs):
                combined[field] = sum(r.get(field, 0) for r in runs)
        if any("max_ms" in r for r in runs):
            combined["max_ms"] = max(r.get("max_ms", 0) for r in runs)
        loaded = [r["latency_under_load"] for r in runs if r.get("latency_under_load")]
        if loaded:
            combined["latency_under_load"] = {
                k: round(statistics.median(x[k] for x in loaded), 3) for k in ("p50_ms", "p99_ms")
            }
        combined["rounds"] = len(runs)
        steps[name] = combined
    starts = [r["startup_s"] for r in system["rounds"] if "startup_s" in r]
    if starts:
        system["startup_s"] = round(statistics.median(starts), 2)
    system["cpu_calibration_per_round"] = [
        [r.get("cpu_calibration_s"), r.get("cpu_calibration_after_s")] for r in system["rounds"]
    ]


# ---------------------------------------------------------------------------------------------
# the report

TABLE: list[tuple[str, str, str, str]] = [
    # (label, step, field, better: "lower" latency or "higher" throughput)
    ("1 entity x 10 features, p50 (ms)", "latency_1", "p50_ms", "lower"),
    ("1 entity x 10 features, p99 (ms)", "latency_1", "p99_ms", "lower"),
    ("1 entity x 10 features, mean (ms)", "latency_1", "mean_ms", "lower"),
    ("100 entities x 10 features, p50 (ms)", "latency_100", "p50_ms", "lower"),
    ("100 entities x 10 features, p99 (ms)", "latency_100", "p99_ms", "lower"),
    ("100 entities x 10 features, mean (ms)", "latency_100", "mean_ms", "lower"),
    ("throughput, 1 entity, {c} clients (requests/s)", "throughput_1", "requests_per_s", "higher"),
    ("load {n:,} rows (s)", "load", "load_s", "lower"),
]
TARGETS = {
    "latency_1/p99_ms": (f"ours < {TARGET_P99_1_MS:g} ms", lambda ours, feast: ours < TARGET_P99_1_MS),
    "latency_100/p99_ms": (f"ours < {TARGET_P99_100_MS:g} ms", lambda ours, feast: ours < TARGET_P99_100_MS),
    "throughput_1/requests_per_s": (
        f">= {TARGET_THROUGHPUT_RATIO:g}x Feast",
        lambda ours, feast: feast is not None and ours >= TARGET_THROUGHPUT_RATIO * feast,
    ),
}


def figure(system: dict[str, Any] | None, step: str, field: str) -> float | None:
    if not system:
        return None
    value = system.get("steps", {}).get(step, {}).get(field)
    if (
        value is None
        or system.get("steps", {}).get(step, {}).get("wrong_answers")
        or (step == "throughput_1" and system["steps"][step].get("failed"))
    ):
        return None  # a figure over refused or wrong answers is no figure
    return float(value)


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"


def build_table(results: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    feast, ours = results["systems"].get("feast"), results["systems"].get("ours")
    cfg = results["config"]
    floor = results.get("client_floor")
    lines = [
        "| measurement | Feast | ours | ratio | target | floor (stub) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = []
    for label, step, field, better in TABLE:
        name = label.format(c=cfg["concurrency"], n=cfg["entities"])
        f, o = figure(feast, step, field), figure(ours, step, field)
        ratio = None
        if f is not None and o:
            ratio = round(f / o, 2) if better == "lower" else round(o / f, 2)
        target = TARGETS.get(f"{step}/{field}")
        verdict = None
        cell = ""
        if target:
            verdict = False if o is None else bool(target[1](o, f))
            if ours is None or (step == "throughput_1" and f is None and o is not None):
                verdict = None  # ours not run, or no Feast figure to compare with
            cell = target[0] + ("" if verdict is None else " PASS" if verdict else " **FAIL**")
        ratio_text = "n/a" if ratio is None else f"{ratio:g}x"
        low = figure(floor, step, field)
        lines.append(f"| {name} | {fmt(f)} | {fmt(o)} | {ratio_text} | {cell} | {fmt(low)} |")
        rows.append(
            {
                "measurement": name,
                "feast": f,
                "ours": o,
                "ratio": ratio,
                "ratio_is": "Feast/ours" if better == "lower" else "ours/Feast",
                "target": target[0] if target else None,
                "pass": verdict,
                "floor": low,
            }
        )
    return lines, rows


def per_round(results: dict[str, Any]) -> list[str]:
    """Every round's figures, to see how much the (shared) machine moved them."""
    lines = [
        "Each round (cpu calibration before/after the round; ms; requests/s):",
        "",
        "| round | system | cpu calibration (s) | 1 entity p50 / p99 | 100 entities p50 / p99 | requests/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in (("feast", "Feast"), ("ours", "ours")):
        for r in results["systems"].get(key, {}).get("rounds", []):
            st = r.get("steps", {})

            def pair(step: str, st: dict[str, Any] = st) -> str:
                x = st.get(step, {})
                return f"{fmt(x.get('p50_ms'))} / {fmt(x.get('p99_ms'))}"

            lines.append(
                f"| {r['round']} | {label} | "
                f"{r.get('cpu_calibration_s')} / {r.get('cpu_calibration_after_s')} | "
                f"{pair('latency_1')} | {pair('latency_100')} | "
                f"{fmt(st.get('throughput_1', {}).get('requests_per_s'))} |"
            )
    return [*lines, ""]


def write(results: dict[str, Any]) -> str:
    table, rows = build_table(results)
    results["table"] = rows
    cfg = results["config"]
    rounds = cfg.get("rounds", 1)
    turns = (
        "The servers ran one after the other, never side by side."
        if rounds == 1
        else f"The servers took turns {rounds} times (never side by side; each loaded once, its server "
        "restarted for each round); each figure is the median over the rounds."
    )
    lines = [
        "# Online feature serving benchmark",
        "",
        f"{results['when']} on {results['machine']}; cpu calibration {results['cpu_calibration_s']} s "
        f"before, {results.get('cpu_calibration_after_s')} s after (a fixed pure-Python loop: larger means "
        "a slower or busier machine; this machine is shared).",
        "",
        f"{cfg['entities']:,} entities x 10 features (f0..f4 float, f5..f9 int), one row each, in Redis "
        "for both. "
        f"Latency: {cfg['requests']:,} requests after {WARMUP} warm-up requests on one keep-alive connection "
        "(Python http.client, the same code for both), random entities from one seeded sequence, each timed "
        "from sending to the answer fully read; every answer is checked against the data. Throughput: "
        f"{cfg['concurrency']} client processes, each its own keep-alive connection, the 1-entity request "
        f"for {cfg['duration']:g} s. {turns} Ratio: Feast/ours for times, "
        "ours/Feast for throughput (higher is better for us).",
        "",
        *table,
        "",
        "Floor (stub): the same client against a one-process asyncio server that answers every request at "
        "once with a canned answer of the right size (1 or 100 entities): loopback HTTP, this client and the "
        "least a Python server costs, on this machine at this time. No server measured here can beat it.",
        "",
    ]
    if rounds > 1:
        lines += per_round(results)
    lines += [
        "## How each was run",
        "",
    ]
    for key in ("feast", "ours"):
        system = results["systems"].get(key)
        if not system:
            continue
        c = system.get("config", {})
        if key == "feast":
            inst = system.get("install", {})
            how = "reused" if inst.get("reused") else f"installed in {inst.get('install_s')} s"
            lines.append(
                f"- Feast {c.get('feast', inst.get('feast'))} (`feast[redis]` in `.bench/feast-venv`, "
                f"{how}), Python {c.get('python')}: `{c.get('command')}`; {c.get('server')}."
            )
            lines.append(f"  - Repo: {c.get('repo')}.")
            load = system.get("steps", {}).get("load", {})
            lines.append(
                f"  - Load: {c.get('load')}: apply {load.get('apply_s')} s, materialize "
                f"{load.get('materialize_s')} s ({load.get('redis_keys')} Redis keys); start-up "
                f"{system.get('startup_s')} s."
            )
            lines.append(f"  - Request: `{system.get('request')}`")
        else:
            lines.append(
                f"- Ours at `{c.get('commit')}` (working tree: {c.get('working_tree')}): "
                f"`{c.get('command')}`; {c.get('server')}; Python "
                f"{c.get('python')}; env {', '.join(f'{k}={v}' for k, v in c.get('env', {}).items())}."
            )
            load = system.get("steps", {}).get("load", {})
            if load:
                lines.append(
                    f"  - Load: {load.get('how')}: {load.get('load_s')} s "
                    f"({load.get('redis_keys')} Redis keys); start-up {system.get('startup_s')} s."
                )
            forms = system.get("request_forms")
            if forms:
                lines.append(
                    f"  - Request forms that worked: 1 entity `{forms['1_entity']}`, 100 entities "
                    f"`{forms['100_entities']}`; every probe is in feature_serving.json."
                )
            if system.get("request"):
                lines.append(f"  - Request: `{system['request']}`")
    for key, label in (("feast", "Feast"), ("ours", "ours")):
        load = (
            results["systems"].get(key, {}).get("steps", {}).get("throughput_1", {}).get("latency_under_load")
        )
        if load:
            lines.append(
                f"- Under load ({label}, {cfg['concurrency']} clients): p50 {fmt(load['p50_ms'])} ms, "
                f"p99 {fmt(load['p99_ms'])} ms per request."
            )
    lines += [
        f"- Redis: 127.0.0.1:6379, DB {cfg['feast_redis_db']} for Feast, DB {cfg['ours_redis_db']} for ours "
        f"(prefix `{OURS_PREFIX}`); before and after its run each system's own keys are deleted (Feast's end "
        f"with its project name `{FEAST_PROJECT}`, ours start with `{OURS_PREFIX}:`), never the whole DB.",
        "- The 2-core machine also runs the clients: the throughput figures are what this box does with the "
        "clients on it, for both systems alike.",
        "- Load times are not targets: Feast's are two CLI runs (`feast apply`, `feast materialize`), each "
        "including the CLI's own start-up; ours is the HTTP loading alone, the server already up.",
    ]
    for key, label in (("feast", "Feast"), ("ours", "Ours")):
        carried = results["systems"].get(key, {}).get("carried_over_from")
        if carried:
            lines.append(
                f"- {label}'s figures are carried over from the run of {carried['when']} (cpu calibration "
                f"{carried['cpu_calibration_s']} s / {carried['cpu_calibration_after_s']} s, "
                f"{carried['requests']:,} requests); this run measured only the other system."
            )
    lines.append("")
    errors = [(key, e) for key, system in results["systems"].items() for e in system.get("errors", [])]
    if errors:
        lines += ["## Errors", ""]
        for key, e in errors:
            lines.append(f"- {key}, {e['step']}: {e['error'][:700]}")
        lines.append("")
    markdown = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feature_serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "feature_serving.md").write_text(markdown)
    return markdown


def carry_over(results: dict[str, Any], other: str) -> None:
    """With --only, the other system's figures come from the last results file (marked as such)."""
    try:
        last = json.loads((RESULTS / "feature_serving.json").read_text())
        system = last["systems"][other]
    except (OSError, ValueError, KeyError):
        return
    if last["config"]["entities"] != results["config"]["entities"] or system.get("carried_over_from"):
        return
    system["carried_over_from"] = {
        "when": last["when"],
        "cpu_calibration_s": last.get("cpu_calibration_s"),
        "cpu_calibration_after_s": last.get("cpu_calibration_after_s"),
        "requests": last["config"]["requests"],
    }
    results["systems"][other] = system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per latency figure")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes for throughput")
    parser.add_argument("--duration", type=float, default=10, help="seconds of the throughput run")
    parser.add_argument("--only", choices=["both", "ours", "feast"], default="both")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench", help="where Feast's venv lives")
    parser.add_argument("--feast-version", help="default: the latest (or the one already installed)")
    parser.add_argument("--feast-redis-db", type=int, default=14)
    parser.add_argument("--ours-redis-db", type=int, default=13, help="not 15: the project's tests use it")
    parser.add_argument("--startup-timeout", type=float, default=120)
    parser.add_argument("--no-floor", action="store_true", help="skip the client floor (stub server)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="servers take turns this many times (each loaded once); figures are medians over rounds",
    )
    args = parser.parse_args()
    args.cache_dir = args.cache_dir if args.cache_dir.is_absolute() else ROOT / args.cache_dir
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.entities < BATCH:
        parser.error(f"--entities must be at least {BATCH}")

    rows = make_rows(args.entities)
    total = WARMUP + args.requests
    plan = Plan(
        rows=rows,
        data={row[JOIN_KEY]: row for row in rows},
        singles=entity_sequences(args.entities, total, 1, SEED + 1),
        batches=entity_sequences(args.entities, total, BATCH, SEED + 2),
        args=args,
    )
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.strip()
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu_calibration_s": cpu_calibration(),
        "versions": {"redis_server": redis_version},
        "config": {
            "entities": args.entities,
            "features": FEATURES,
            "requests": args.requests,
            "warmup": WARMUP,
            "entities_per_batch_request": BATCH,
            "concurrency": args.concurrency,
            "duration": args.duration,
            "only": args.only,
            "rounds": args.rounds,
            "seed": SEED,
            "feast_redis_db": args.feast_redis_db,
            "ours_redis_db": args.ours_redis_db,
            "targets": {
                "ours_1_entity_p99_ms": f"< {TARGET_P99_1_MS:g}",
                "ours_100_entities_p99_ms": f"< {TARGET_P99_100_MS:g}",
                "throughput_ours_over_feast": f">= {TARGET_THROUGHPUT_RATIO:g}",
            },
        },
        "systems": {},
    }
    wanted = ["feast", "ours"] if args.only == "both" else [args.only]
    if not args.no_floor:
        print("== client floor (stub server)", flush=True)
    if args.only != "both":
        carry_over(results, "ours" if args.only == "feast" else "feast")
    with tempfile.TemporaryDirectory(prefix="feature-bench-") as tmp:
        if not args.no_floor:
            results["client_floor"] = client_floor(plan, Path(tmp) / "stub")
        systems: list[System] = [(Feast if key == "feast" else Ours)(plan, Path(tmp) / key) for key in wanted]
        try:
            ready = []
            for system in systems:
                print(f"== {system.key}: set-up", flush=True)
                t0 = time.perf_counter()
                if system.prepare():
                    ready.append(system)
                system.out["wall_s"] = round(time.perf_counter() - t0, 1)
            for r in range(args.rounds):
                for system in list(ready):
                    print(f"== {system.key}: round {r + 1} of {args.rounds}", flush=True)
                    t0 = time.perf_counter()
                    system.run_round(r)
                    system.out["wall_s"] = round(system.out["wall_s"] + time.perf_counter() - t0, 1)
                    if system.single is None:
                        ready.remove(system)  # never got to serving: no use trying again
        finally:
            for system in systems:
                system.cleanup()
        for system in systems:
            combine(system.out)
            results["systems"][system.key] = system.out
    if "feast" in results["systems"]:
        results["versions"]["feast"] = results["systems"]["feast"].get("install", {}).get("feast")
    results["cpu_calibration_after_s"] = cpu_calibration()
    print(write(results))
    return 1 if any(s.get("errors") for s in results["systems"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
