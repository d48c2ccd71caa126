"""Pipeline orchestrator benchmark: scheduling overhead of no-op tasks on the local executor.

Starts a real orchestrator (`python -m pipeline_orchestrator`) on a free loopback port, embedded
SQLite under a temporary MLOPS_DATA_DIR, the local executor with --workers worker processes, and
this folder on its PYTHONPATH so the workers import `orchestrator_noop:noop`. Everything goes over
HTTP (httpx). Before measuring, a small pipeline of python and shell tasks runs twice so that the
worker processes are spawned and have imported the task kinds: process spawn is not counted.

Scenarios (the issue's targets):

- chain: --chain no-op tasks in a line (python `orchestrator_noop:noop`, then shell `true`),
  cache off. Overhead per task = (run finished_at - run created_at - sum of the attempts'
  finished_at - started_at) / n, all from `GET /api/runs/{id}`. Target: under 20 ms per task.
  Repeated --repeats times; the median is the headline.
- fan-out: one root task and --fanout no-op python tasks downstream of it. Target: under 30 s.
- concurrent: --runs runs of a 10-task pipeline (start -> 8 parallel -> end) triggered at once
  (max_active_runs = --runs); wall time, failures (target 0), tasks/s. Then again with the
  triggers sent through --paced-clients connections: the engine's side without the API burst.

Also recorded for each: the time the worker itself spent on the attempt (the runner's log footer,
"... succeeded in 0.001s"), the scheduling passes the scenario took (count and time, from the
service's `mlops_pipeline_scheduling_pass_seconds` on /metrics), and for the chain a breakdown
with `orchestrator_noop:stamp` (the task returns when it ran: engine -> task is dispatch, task ->
engine is report). Completion is watched by polling `GET /api/pipelines/{p}/runs` (no tasks in
the answer) every --poll seconds; timestamps come from the service, so the poll interval bounds
only the client-side wall time.
A cpu calibration (fixed pure-Python loop) and the load average go with every figure.

With --py-spy PATH each scenario is run a second time under `py-spy record` attached to the
service process, after the measured runs; the top frames go into the results.

    uv run python scripts/bench/orchestrator_bench.py [--quick] [--workers 4] [--chain 100] \\
        [--fanout 1000] [--runs 100] [--paced-clients 4] [--repeats 3] [--poll 0.02] \\
        [--timeout 900] [--only chain fanout concurrent] [--py-spy PATH [--profile-dir DIR]]

py-spy is not a dependency: `python3 -m uv venv /tmp/pyspy && python3 -m uv pip install --python
/tmp/pyspy/bin/python py-spy`, then --py-spy /tmp/pyspy/bin/py-spy.

--quick (chain 10, fan-out 50, 10 concurrent runs, 1 repeat) is a smoke run (about 15 s, most of
it the service and its workers starting); it prints the figures and writes nothing unless --write
is given. Exit status 1 when a run failed, a trigger was refused or a scenario timed out (a missed
target alone is not an error).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from benchkit import PySpy, Server, cal, clean_env, cpu_calibration, fmt, free_port, machine_state, verdict
from benchkit import source_state as benchkit_source_state

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
FINISHED = {"succeeded", "failed", "cancelled"}
NOOP = "orchestrator_noop:noop"
STAMP = "orchestrator_noop:stamp"
TARGET_CHAIN_MS = 20.0
TARGET_FANOUT_S = 30.0
FOOTER = re.compile(r"^--- .* attempt \d+ [a-z ]+ in ([0-9.]+)s$", re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# pipelines


def python_task(name: str, depends_on: list[str], fn: str = NOOP) -> dict[str, Any]:
    return {"name": name, "kind": "python", "callable": fn, "cache": False, "depends_on": depends_on}


def shell_task(name: str, depends_on: list[str]) -> dict[str, Any]:
    return {"name": name, "kind": "shell", "command": "true", "cache": False, "depends_on": depends_on}


def chain(name: str, n: int, kind: str) -> dict[str, Any]:
    names = [f"t{i:04d}" for i in range(n)]
    tasks = []
    for i, task in enumerate(names):
        upstream = [names[i - 1]] if i else []
        if kind == "shell":
            tasks.append(shell_task(task, upstream))
        else:
            tasks.append(python_task(task, upstream, STAMP if kind == "stamp" else NOOP))
    return {"name": name, "max_active_runs": 4, "tasks": tasks}


def fanout(name: str, n: int) -> dict[str, Any]:
    tasks = [python_task("root", [])] + [python_task(f"t{i:04d}", ["root"]) for i in range(n)]
    return {"name": name, "max_active_runs": 4, "tasks": tasks}


def diamond(name: str, width: int, max_active_runs: int) -> dict[str, Any]:
    middle = [python_task(f"m{i}", ["start"]) for i in range(width)]
    tasks = [python_task("start", []), *middle, python_task("end", [t["name"] for t in middle])]
    return {"name": name, "max_active_runs": max_active_runs, "tasks": tasks}


def warmup_pipeline(name: str, workers: int) -> dict[str, Any]:
    width = 2 * workers  # every worker gets tasks of both kinds, whichever is idle first
    tasks = [python_task(f"py{i}", []) for i in range(width)] + [
        shell_task(f"sh{i}", []) for i in range(width)
    ]
    return {"name": name, "max_active_runs": 4, "tasks": tasks}


# ---------------------------------------------------------------------------------------------
# talking to the service


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (ts(b) - ts(a)).total_seconds()


class Orchestrator:
    def __init__(self, uri: str):
        self.uri = uri
        self.http = httpx.Client(base_url=uri, timeout=120)

    def close(self) -> None:
        self.http.close()

    def create(self, definition: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post("/api/pipelines", json=definition)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"creating {definition['name']}: HTTP {r.status_code} {r.text[:500]}")
        return r.json()

    def trigger(self, pipeline: str) -> dict[str, Any]:
        r = self.http.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": {}})
        if r.status_code != 201:
            raise RuntimeError(f"triggering {pipeline}: HTTP {r.status_code} {r.text[:500]}")
        return r.json()

    def runs(self, pipeline: str, limit: int = 1, state: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        r = self.http.get(f"/api/pipelines/{pipeline}/runs", params=params)
        r.raise_for_status()
        return r.json()

    def run(self, run_id: str) -> dict[str, Any]:
        r = self.http.get(f"/api/runs/{run_id}")
        r.raise_for_status()
        return r.json()

    def cancel(self, run_id: str) -> None:
        self.http.post(f"/api/runs/{run_id}/cancel")

    def wait_latest(self, pipeline: str, run_id: str, poll: float, timeout: float) -> tuple[dict, int, bool]:
        """Polls the pipeline's newest run (no tasks in the answer): (run, polls, timed out)."""
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            polls += 1
            item = self.runs(pipeline)["items"][0]
            if item["id"] != run_id:
                raise RuntimeError(f"another run of {pipeline} started ({item['id']})")
            if item["state"] in FINISHED:
                return item, polls, False
            if time.monotonic() > deadline:
                return item, polls, True
            time.sleep(poll)

    def passes(self) -> tuple[float, float] | None:
        """(count, total seconds) of scheduling passes so far, from the service's /metrics."""
        try:
            text = self.http.get("/metrics").text
        except httpx.HTTPError:
            return None
        found: dict[str, float] = {}
        for line in text.splitlines():
            for suffix in ("count", "sum"):
                if line.startswith(f"mlops_pipeline_scheduling_pass_seconds_{suffix}"):
                    found[suffix] = found.get(suffix, 0.0) + float(line.rsplit(" ", 1)[1])
        return (found["count"], found["sum"]) if len(found) == 2 else None

    def worker_seconds(self, run_id: str, task: str) -> float | None:
        """What the worker measured around the attempt (the runner's log footer)."""
        r = self.http.get(f"/api/runs/{run_id}/tasks/{task}/logs")
        if r.status_code != 200:
            return None
        found = FOOTER.findall(r.text)
        return float(found[-1]) if found else None


def attempt_durations(run: dict[str, Any]) -> list[float]:
    out = []
    for task in run["tasks"]:
        for attempt in task["attempts"]:
            took = seconds(attempt["started_at"], attempt["finished_at"])
            if took is not None:
                out.append(took)
    return out


def ms_stats(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    ordered = sorted(samples)

    def pick(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000, 2)

    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "p50_ms": pick(50),
        "p99_ms": pick(99),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


# ---------------------------------------------------------------------------------------------
# scenarios


def run_once(api: Orchestrator, pipeline: str, poll: float, timeout: float, logs: bool) -> dict[str, Any]:
    """Trigger one run, wait for it, and take its figures from `GET /api/runs/{id}`."""
    before = machine_state()
    passes_before = api.passes()
    t0 = time.perf_counter()
    created = api.trigger(pipeline)
    _, polls, timed_out = api.wait_latest(pipeline, created["id"], poll, timeout)
    wall = time.perf_counter() - t0
    passes = pass_delta(passes_before, api.passes())
    if timed_out:
        api.cancel(created["id"])
    after = machine_state()
    run = api.run(created["id"])
    n = len(run["tasks"])
    span = seconds(run["created_at"], run["finished_at"])
    durations = attempt_durations(run)
    task_time = sum(durations)
    out: dict[str, Any] = {
        "run_id": run["id"],
        "state": run["state"],
        "timed_out": timed_out,
        "tasks": n,
        "progress": run["progress"],
        "failed_tasks": sum(1 for t in run["tasks"] if t["state"] not in ("succeeded", "cached")),
        "attempts": len(durations),
        "client_wall_s": round(wall, 4),
        "engine_span_s": round(span, 4) if span is not None else None,
        "queued_to_running_ms": _ms(seconds(run["created_at"], run["started_at"])),
        "attempt_time_sum_s": round(task_time, 4),
        "attempt_time": ms_stats(durations),
        "polls": polls,
        "scheduling_passes": passes,
        "machine_before": before,
        "machine_after": after,
    }
    if passes and n:
        passes["per_task"] = round(passes["count"] / n, 2)
        if span:
            passes["share_of_span"] = round(passes["total_s"] / span, 3)
    if span is not None and n:
        out["overhead_per_task_ms"] = round((span - task_time) / n * 1000, 3)
        out["span_per_task_ms"] = round(span / n * 1000, 3)
    if logs and not timed_out:
        worker = [api.worker_seconds(run["id"], t["name"]) for t in run["tasks"]]
        measured = [w for w in worker if w is not None]
        out["worker_time_sum_s"] = round(sum(measured), 4)
        out["worker_time_found"] = len(measured)
        if span is not None and n:
            out["overhead_vs_worker_time_per_task_ms"] = round((span - sum(measured)) / n * 1000, 3)
    stamps = [
        (a["started_at"], t["outputs"]["ran_at"], a["finished_at"])
        for t in run["tasks"]
        for a in t["attempts"][-1:]
        if isinstance(t.get("outputs"), dict) and "ran_at" in t["outputs"] and a["finished_at"]
    ]
    if stamps:
        out["dispatch"] = ms_stats([ran - ts(start).timestamp() for start, ran, _ in stamps])
        out["report"] = ms_stats([ts(end).timestamp() - ran for _, ran, end in stamps])
    return out


def pass_delta(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> dict[str, Any] | None:
    """Scheduling passes between two /metrics readings (the polls and the trigger cause none)."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    count, total = after[0] - before[0], after[1] - before[1]
    return {"count": int(count), "total_s": round(total, 4), "mean_ms": round(total / count * 1000, 3)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def bench_chain(api: Orchestrator, args: argparse.Namespace, kind: str, repeats: int) -> dict[str, Any]:
    name = f"bench-chain-{kind}-{args.chain}"
    api.create(chain(name, args.chain, kind))
    rounds = [run_once(api, name, args.poll, args.timeout, logs=True) for _ in range(repeats)]
    ok = [r for r in rounds if r["state"] == "succeeded" and "overhead_per_task_ms" in r]
    out: dict[str, Any] = {
        "pipeline": name,
        "shape": f"chain of {args.chain} {kind} tasks",
        "task": {"python": NOOP, "stamp": STAMP, "shell": "shell `true` (/bin/sh -c true)"}[kind],
        "rounds": rounds,
        "errors": len(rounds) - len(ok),
    }
    if ok:
        overhead = sorted(r["overhead_per_task_ms"] for r in ok)
        out["overhead_per_task_ms_median"] = round(statistics.median(overhead), 3)
        out["overhead_per_task_ms_best"] = overhead[0]
        out["overhead_vs_worker_time_per_task_ms_median"] = round(
            statistics.median(r["overhead_vs_worker_time_per_task_ms"] for r in ok), 3
        )
        out["engine_span_s_median"] = round(statistics.median(r["engine_span_s"] for r in ok), 4)
        out["span_per_task_ms_median"] = round(statistics.median(r["span_per_task_ms"] for r in ok), 3)
    return out


def bench_fanout(api: Orchestrator, args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench-fanout-{args.fanout}"
    api.create(fanout(name, args.fanout))
    result = run_once(api, name, args.poll, args.timeout, logs=True)
    return {
        "pipeline": name,
        "shape": f"1 root -> {args.fanout} python no-op tasks",
        "task": NOOP,
        **result,
        "errors": 0 if result["state"] == "succeeded" else 1,
    }


def bench_concurrent(
    api: Orchestrator, args: argparse.Namespace, clients: int | None = None
) -> dict[str, Any]:
    """--runs runs of a 10-task pipeline triggered together (clients=None: all at once, one
    connection each; else that many connections triggering one after the other), then waited for."""
    name = f"bench-concurrent-{args.runs}" + (f"-paced{clients}" if clients else "")
    width = 8
    api.create(diamond(name, width, max_active_runs=args.runs))
    existing = {r["id"] for r in api.runs(name, limit=200)["items"]}
    before = machine_state()
    passes_before = api.passes()
    t0 = time.perf_counter()
    answers = asyncio.run(_trigger_many(api.uri, name, args.runs, clients or args.runs))
    triggered = time.perf_counter() - t0
    refused = [a for a in answers if not isinstance(a, dict)]
    deadline = time.monotonic() + args.timeout
    polls, timed_out = 0, False
    while True:  # every run of the pipeline, also those created for a refused (timed-out) trigger
        polls += 1
        # queued first: a run leaves queued for running, never the other way
        queued = api.runs(name, state="queued")["total"]
        active = api.runs(name, state="running")["total"] + api.runs(name, state="cancelling")["total"]
        if not queued and not active:
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        time.sleep(args.poll)
    wall = time.perf_counter() - t0
    passes = pass_delta(passes_before, api.passes())
    after = machine_state()
    mine = [r for r in api.runs(name, limit=200)["items"] if r["id"] not in existing]
    if timed_out:
        for r in mine:
            if r["state"] not in FINISHED:
                api.cancel(r["id"])
    states = collections.Counter(r["state"] for r in mine)
    created = [ts(r["created_at"]) for r in mine]
    finished = [ts(r["finished_at"]) for r in mine if r["finished_at"]]
    span = (max(finished) - min(created)).total_seconds() if finished and created else None
    latencies = [seconds(r["created_at"], r["finished_at"]) for r in mine if r["finished_at"]]
    tasks_total = sum(r["progress"]["total"] for r in mine)
    tasks_ok = sum(r["progress"]["states"].get("succeeded", 0) for r in mine)
    accepted = len(answers) - len(refused)
    # a failure: a refused trigger, or an accepted run that did not succeed
    failures = (
        len(refused)
        + accepted
        - sum(1 for r in mine if r["state"] == "succeeded" and r["id"] in _ids(answers))
    )
    return {
        "pipeline": name,
        "shape": f"start -> {width} parallel -> end ({width + 2} python no-op tasks)",
        "task": NOOP,
        "runs": args.runs,
        "triggering": "all at once, one connection each" if not clients else f"{clients} connections",
        "max_active_runs": args.runs,
        "trigger_s": round(triggered, 4),
        "refused_count": len(refused),
        "refused_examples": sorted({str(a)[:300] for a in refused})[:5],
        "runs_created": len(mine),
        "run_states": dict(states),
        "failures": failures,
        "timed_out": timed_out,
        "tasks": tasks_total,
        "tasks_succeeded": tasks_ok,
        "client_wall_s": round(wall, 4),
        "engine_span_s": round(span, 4) if span is not None else None,
        "tasks_per_s_wall": round(tasks_ok / wall, 2) if wall else None,
        "tasks_per_s_engine": round(tasks_ok / span, 2) if span else None,
        "run_latency": ms_stats([x for x in latencies if x is not None]),
        "polls": polls,
        "scheduling_passes": passes,
        "machine_before": before,
        "machine_after": after,
        "errors": failures + int(timed_out),
    }


def _ids(answers: list[Any]) -> set[str]:
    return {a["id"] for a in answers if isinstance(a, dict)}


async def _trigger_many(uri: str, pipeline: str, n: int, clients: int) -> list[Any]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    gate = asyncio.Semaphore(clients)
    async with httpx.AsyncClient(base_url=uri, timeout=120, limits=limits) as http:

        async def one() -> Any:
            async with gate:
                try:
                    r = await http.post(f"/api/pipelines/{pipeline}/runs", json={"parameters": {}})
                except httpx.HTTPError as exc:
                    return f"{type(exc).__name__}: {exc}"
            return r.json() if r.status_code == 201 else f"HTTP {r.status_code} {r.text[:300]}"

        return await asyncio.gather(*(one() for _ in range(n)))


def warm_up(api: Orchestrator, workers: int, poll: float) -> dict[str, Any]:
    name = "bench-warmup"
    api.create(warmup_pipeline(name, workers))
    out = []
    for _ in range(2):
        t0 = time.perf_counter()
        created = api.trigger(name)
        item, _, timed_out = api.wait_latest(name, created["id"], poll, 120)
        if timed_out or item["state"] != "succeeded":
            run = api.run(created["id"])
            errors = [t["error"] for t in run["tasks"] if t.get("error")][:3]
            raise RuntimeError(f"the warm-up run ended {item['state']}: {errors}")
        out.append(round(time.perf_counter() - t0, 3))
    return {"pipeline": f"{2 * workers} python + {2 * workers} shell no-op tasks in parallel", "runs_s": out}


# ---------------------------------------------------------------------------------------------
# py-spy


class Profile(PySpy):
    """py-spy on the service process, summarized for this service."""

    def stop(self) -> dict[str, Any]:
        return self.finish(summarize_profile)


AREAS = (
    ("engine pass (Engine.tick)", "Engine.tick ("),
    ("API requests", "_run_sync_endpoint ("),
    ("local executor reader", "LocalExecutor._read_loop ("),
    ("event loop thread (uvicorn, asyncio)", "Server.run ("),
    ("anyio threads between jobs (Queue.get)", "WorkerThread.run ("),
)


def summarize_profile(raw: str, top: int = 25) -> dict[str, Any]:
    total = 0
    areas: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        area = next((label for label, marker in AREAS if marker in stack), "other")
        areas[area] += n
        own[frames[-1]] += n
        for frame in set(frames):
            if "pipeline_orchestrator/" in frame:
                inclusive[frame] += n

    def share(counter: collections.Counter[str]) -> list[dict[str, Any]]:
        return [
            {"frame": f, "samples": n, "percent": round(100 * n / total, 1)}
            for f, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "areas": {k: {"samples": n, "percent": round(100 * n / total, 1)} for k, n in areas.most_common()}
        if total
        else {},
        "pipeline_orchestrator_inclusive": share(inclusive) if total else [],
        "self": share(own)[:15] if total else [],
    }


def profile_scenarios(
    api: Orchestrator, server: Server, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.pid
    out: dict[str, Any] = {"rate_hz": args.py_spy_rate, "note": "a second, profiled run of each scenario"}
    plan = [
        ("chain_python", lambda: bench_chain(api, args, "python", max(3, args.repeats))),
        ("concurrent", lambda: bench_concurrent(api, args)),
        ("concurrent_paced", lambda: bench_concurrent(api, args, args.paced_clients or 4)),
        ("fanout", lambda: bench_fanout(api, args)),
    ]
    for key, scenario in plan:
        print(f"profiling {key} ...", flush=True)
        where = Path(args.profile_dir) if args.profile_dir else workdir
        where.mkdir(parents=True, exist_ok=True)
        prof = Profile(args.py_spy, pid, where / f"{key}.raw", args.py_spy_rate)
        try:
            figures = scenario()
        finally:
            summary = prof.stop()
        wall = figures.get("client_wall_s") or sum(r["client_wall_s"] for r in figures["rounds"])
        out[key] = {"client_wall_s_profiled": round(wall, 3), **summary}
        if key == "chain_python":
            out[key]["runs"] = len(figures["rounds"])
    return out


# ---------------------------------------------------------------------------------------------
# the service


def start_server(workdir: Path, workers: int, timeout: float) -> tuple[Server, dict[str, Any]]:
    port = free_port()
    env = clean_env()
    env.update(
        {
            "MLOPS_DATA_DIR": str(workdir / "data"),
            "MLOPS_PIPELINE_ORCHESTRATOR_PORT": str(port),
            "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "local",
            "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": str(workers),
            "MLOPS_ENV_FILE": "",
            "MLOPS_LOG_JSON": "false",
            "MLOPS_LOG_LEVEL": "warning",
            "PYTHONPATH": str(BENCH_DIR),  # the workers import orchestrator_noop
        }
    )
    server = Server(
        "pipeline_orchestrator",
        [sys.executable, "-m", "pipeline_orchestrator"],
        env,
        port,
        workdir / "server.log",
    )
    startup = server.start(timeout)
    config = {
        "command": "python -m pipeline_orchestrator",
        "env": {
            k: v.replace(str(workdir), "<tmp>").replace(str(BENCH_DIR), "scripts/bench")
            for k, v in env.items()
            if k.startswith("MLOPS_") or k == "PYTHONPATH"
        },
        "storage": "embedded SQLite under MLOPS_DATA_DIR",
        "executor": f"local, {workers} worker processes",
        "startup_s": startup,
    }
    return server, config


def source_state() -> dict[str, Any]:
    """The commit measured, and whether the service's files differed from it (others edit it too)."""
    return benchkit_source_state(
        BENCH_DIR.parents[1], "services/pipeline_orchestrator/src", "libs/mlops_kit/src"
    )


def server_errors(server: Server, keep: str | None) -> dict[str, Any]:
    """ERROR lines of the service log (counted, the first few), and its first tracebacks in full."""
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return {}
    if keep:
        Path(keep).write_text(text)
    lines = text.splitlines()
    errors = [line for line in lines if " ERROR " in line]
    tracebacks: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback") and len(tracebacks) < 2:
            end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j][0].isspace()), i)
            tracebacks.append("\n".join(lines[i : end + 1])[-4000:])
    return {"error_lines": len(errors), "first": [e[:300] for e in errors[:5]], "tracebacks": tracebacks}


# ---------------------------------------------------------------------------------------------
# output


def chain_row(key: str, fig: dict[str, Any]) -> str:
    ok = [r for r in fig["rounds"] if r["state"] == "succeeded"]
    label = "chain, python no-op" if key == "chain_python" else "chain, shell `true`"
    each = ", ".join(fmt(r.get("overhead_vs_worker_time_per_task_ms"), 2) for r in fig["rounds"])
    strict = fig.get("overhead_vs_worker_time_per_task_ms_median")
    attempts = statistics.median(r["attempt_time_sum_s"] for r in ok) if ok else None
    return (
        f"| {label} (median of {len(fig['rounds'])}: {each}) | {fig['rounds'][0]['tasks']} "
        f"| {fmt(fig.get('engine_span_s_median'), 3)} | {fmt(attempts, 3)} "
        f"| {fmt(fig.get('overhead_per_task_ms_median'), 2)} | {fmt(strict, 2)} "
        f"| < {TARGET_CHAIN_MS:g} ms: {verdict(None if strict is None else strict < TARGET_CHAIN_MS)} "
        f"| {cal(fig['rounds'][-1])} |"
    )


def passes_table(sc: dict[str, Any]) -> list[str]:
    """Scheduling passes per scenario, from the service's mlops_pipeline_scheduling_pass_seconds."""
    rows = []
    labels = {
        "chain_python": "chain, python",
        "chain_shell": "chain, shell",
        "fanout": "fan-out",
        "concurrent": "concurrent, all at once",
        "concurrent_paced": "concurrent, 4 connections",
    }
    for key, label in labels.items():
        fig = sc.get(key)
        if not fig:
            continue
        run = fig["rounds"][len(fig["rounds"]) // 2] if "rounds" in fig else fig
        p = run.get("scheduling_passes")
        if not p:
            continue
        tasks = run.get("tasks") or 0
        span = run.get("engine_span_s")
        rows.append(
            f"| {label} | {tasks:,} | {p['count']:,} | {fmt(p['count'] / tasks if tasks else None, 2)} "
            f"| {fmt(p['mean_ms'], 2)} | {fmt(p['total_s'], 3)} "
            f"| {fmt(100 * p['total_s'] / span if span else None, 0)}% |"
        )
    if not rows:
        return []
    return [
        "Scheduling passes (the service's `mlops_pipeline_scheduling_pass_seconds`; a chain's middle round):",
        "",
        "| scenario | tasks | passes | passes / task | mean pass (ms) | pass time (s) | pass time / span |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]


def write(results: dict[str, Any], to_files: bool) -> str:
    cfg = results["config"]
    sc = results["scenarios"]
    workers = cfg["workers"]
    source = results["source"]
    changed = " plus uncommitted changes to the service" if source["service_files_changed"] else ""
    lines = [
        "# Pipeline orchestrator benchmark" + (" (--quick smoke run)" if cfg["quick"] else ""),
        "",
        f"{results['when']} on {results['machine']}, commit {str(source['commit'])[:10]}{changed}; "
        f"cpu calibration {results['cpu_calibration_s']} s before, "
        f"{results.get('cpu_calibration_after_s')} s after (a fixed pure-Python loop: larger means a "
        "slower or busier machine; every figure below has its own, before / after, with the 1-minute "
        "load average).",
        "",
        f"One `python -m pipeline_orchestrator` process: embedded SQLite, local executor with {workers} "
        "worker processes, driven over loopback HTTP (httpx) by `scripts/bench/orchestrator_bench.py`. "
        f"Tasks are no-ops (`{NOOP}`, or shell `true`), cache off. The workers were warmed up first "
        f"(a pipeline of {2 * workers} python + {2 * workers} shell tasks ran twice: "
        f"{results['warmup']['runs_s']} s), so process spawn and imports are not counted. Completion was "
        f"polled every {cfg['poll_s'] * 1000:g} ms on `GET /api/pipelines/{{p}}/runs` (no tasks in the "
        "answer); the figures use the service's own timestamps from `GET /api/runs/{id}`, so the poll "
        "interval bounds only the client's wall time.",
        "",
        "- *span*: run finished_at - created_at (service clock).",
        "- *overhead / task* (the issue's formula): (span - sum of attempt durations) / n. The engine stamps "
        "an attempt's started_at / finished_at with the start of the scheduling pass that submitted / "
        "recorded it, so an attempt's duration already holds the dispatch and report latency: this is only "
        "what is left between attempts.",
        "- *full overhead / task*: (span - the time the workers measured around the tasks themselves, from "
        "the runner's log footer) / n: the whole cost of scheduling a no-op task, the figure judged against "
        "the target.",
        "",
        "| scenario | tasks | span (s) | sum of attempts (s) | overhead / task (ms) "
        "| full overhead / task (ms) | target | cpu cal. |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in ("chain_python", "chain_shell"):
        if sc.get(key):
            lines.append(chain_row(key, sc[key]))
    fan = sc.get("fanout")
    if fan:
        span = fan.get("engine_span_s")
        ok = None if span is None else span < TARGET_FANOUT_S and fan["state"] == "succeeded"
        late = f" (**timed out** after {cfg['timeout_s']:g} s, {fan['progress']['done']} done)"
        lines.append(
            f"| fan-out, 1 root -> {cfg['fanout']:,} python no-ops{late if fan['timed_out'] else ''} "
            f"| {fan['tasks']:,} | {fmt(span, 2)} | {fmt(fan['attempt_time_sum_s'], 2)} | n/a (parallel) "
            f"| {fmt(fan.get('span_per_task_ms'), 2)} (span / n) "
            f"| total < {TARGET_FANOUT_S:g} s: {verdict(ok)} | {cal(fan)} |"
        )
    lines.append("")
    rows = [sc[k] for k in ("concurrent", "concurrent_paced") if sc.get(k)]
    if rows:
        con = rows[0]
        lines += [
            f"Concurrent runs: {con['runs']} runs of {con['shape']}, max_active_runs "
            f"{con['max_active_runs']}; triggered all at once (async httpx, one connection each), and "
            "again through a few connections (the engine's side alone).",
            "",
            "| runs x tasks | triggered | wall (s) | span (s) | failures | tasks/s (wall) "
            "| run latency p50 / p99 (s) | triggering (s) | target | cpu cal. |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for con in rows:
            lat = con.get("run_latency") or {}
            ok = con["failures"] == 0 and not con["timed_out"]
            failures = f"{con['failures']}"
            if con["refused_count"]:
                failures += f" ({con['refused_count']} triggers refused; {con['runs_created']} runs created)"
            if con["timed_out"]:
                failures += " (timed out)"
            lines.append(
                f"| {con['runs']} x {con['tasks'] // max(con['runs_created'], 1)} | {con['triggering']} "
                f"| {fmt(con['client_wall_s'], 2)} | {fmt(con['engine_span_s'], 2)} | {failures} "
                f"| {fmt(con['tasks_per_s_wall'], 1)} "
                f"| {fmt((lat.get('p50_ms') or 0) / 1000, 2)} / {fmt((lat.get('p99_ms') or 0) / 1000, 2)} "
                f"| {fmt(con['trigger_s'], 2)} | 0 failures: {verdict(ok)} | {cal(con)} |"
            )
        refused = [e for con in rows for e in con["refused_examples"]]
        if refused:
            lines += ["", "Refused triggers, e.g.:", "", *[f"    {e}" for e in refused[:2]]]
        lines.append("")
    lines += passes_table(sc)
    stamp = sc.get("chain_stamp")
    r = next((x for x in stamp["rounds"] if x.get("dispatch")), None) if stamp else None
    if r:
        d, p = r["dispatch"], r["report"]
        lines += [
            f"Where a chain task's time goes ({r['tasks']} python tasks that return when they ran, "
            f"`{STAMP}`; span / task {fmt(r.get('span_per_task_ms'), 2)} ms):",
            "",
            "| leg (ms) | mean | p50 | p99 | max |",
            "| --- | --- | --- | --- | --- |",
            "| dispatch: start of the pass submitting it (attempt started_at) -> the task runs "
            f"| {d['mean_ms']} | {d['p50_ms']} | {d['p99_ms']} | {d['max_ms']} |",
            "| report: the task ran -> start of the pass recording it (attempt finished_at) "
            f"| {p['mean_ms']} | {p['p50_ms']} | {p['p99_ms']} | {p['max_ms']} |",
            "",
        ]
    profiles = results.get("profiles")
    if profiles:
        lines += [
            f"Profile: py-spy at {profiles['rate_hz']} Hz on the service process (not its workers) during a "
            "second run of each scenario, after the measured ones; shares of the samples where a thread was "
            "busy.",
            "",
        ]
        for key in ("chain_python", "concurrent", "concurrent_paced", "fanout"):
            prof = profiles.get(key)
            if not prof or not prof.get("samples"):
                continue
            areas = ", ".join(f"{k} {v['percent']}%" for k, v in prof["areas"].items())
            lines.append(
                f"- **{key}** ({prof['samples']} samples, wall {prof['client_wall_s_profiled']} s): {areas}. "
                "Top frames of the service's own code (inclusive):"
            )
            lines += [
                f"  - {f['percent']}% `{f['frame']}`" for f in prof["pipeline_orchestrator_inclusive"][:12]
            ]
        lines.append("")
    logged = results.get("server_errors") or {}
    if logged.get("error_lines"):
        lines += [f"{logged['error_lines']} ERROR lines in the service log; the first:", ""]
        lines += [f"    {e}" for e in logged["first"]]
        for tb in logged["tracebacks"][:1]:
            lines += ["", *[f"    {x}" for x in tb.splitlines()[-12:]]]
        lines.append("")
    markdown = "\n".join(lines)
    if to_files:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "orchestrator.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "orchestrator.md").write_text(markdown)
    return markdown


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes; print only (unless --write)")
    parser.add_argument("--write", action="store_true", help="with --quick: write the results files anyway")
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--workers", type=int, default=4, help="local executor worker processes")
    parser.add_argument("--chain", type=int, help="tasks in the chain (default 100; quick 10)")
    parser.add_argument("--fanout", type=int, help="tasks under the fan-out's root (default 1000; quick 50)")
    parser.add_argument("--runs", type=int, help="concurrent runs of 10 tasks (default 100; quick 10)")
    parser.add_argument("--repeats", type=int, help="runs of each chain (default 3; quick 1)")
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between completion polls")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a scenario's runs may take")
    parser.add_argument(
        "--only", nargs="+", choices=["chain", "fanout", "concurrent"], help="scenarios to run"
    )
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile each scenario in a second run")
    parser.add_argument("--py-spy-rate", type=int, default=100, help="samples per second")
    parser.add_argument("--profile-dir", help="keep py-spy's raw stacks (collapsed format) there")
    parser.add_argument("--startup-timeout", type=float, default=120)
    parser.add_argument("--keep-log", help="copy the service's log there")
    parser.add_argument(
        "--paced-clients",
        type=int,
        default=4,
        help="also trigger the concurrent runs through this many connections (0: skip)",
    )
    args = parser.parse_args()
    quick = args.quick
    args.chain = args.chain or (10 if quick else 100)
    args.fanout = args.fanout or (50 if quick else 1000)
    args.runs = args.runs or (10 if quick else 100)
    args.repeats = args.repeats or (1 if quick else 3)
    to_files = not args.no_write and (not quick or args.write)
    only = set(args.only or ["chain", "fanout", "concurrent"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "source": source_state(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cpu_calibration_s": cpu_calibration(),
        "config": {
            "quick": quick,
            "workers": args.workers,
            "chain": args.chain,
            "fanout": args.fanout,
            "concurrent_runs": args.runs,
            "repeats": args.repeats,
            "poll_s": args.poll,
            "poll_endpoint": "GET /api/pipelines/{p}/runs (limit=1; concurrent: state=queued/running totals)",
            "timeout_s": args.timeout,
            "targets": {
                "chain_overhead_per_task_ms": f"< {TARGET_CHAIN_MS:g}",
                "fanout_total_s": f"< {TARGET_FANOUT_S:g}",
                "concurrent_failures": 0,
            },
        },
        "scenarios": {},
    }
    errors = 0
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        workdir = Path(tmp)
        server, server_config = start_server(workdir, args.workers, args.startup_timeout)
        results["config"]["server"] = server_config
        api = Orchestrator(server.uri)
        try:
            results["warmup"] = warm_up(api, args.workers, args.poll)
            sc = results["scenarios"]
            if "chain" in only:
                for kind in ("python", "shell"):
                    print(f"chain of {args.chain} {kind} tasks x {args.repeats} ...", flush=True)
                    sc[f"chain_{kind}"] = bench_chain(api, args, kind, args.repeats)
                print("chain breakdown (stamp) ...", flush=True)
                sc["chain_stamp"] = bench_chain(api, args, "stamp", 1)
            if "concurrent" in only:
                print(f"{args.runs} concurrent runs ...", flush=True)
                sc["concurrent"] = bench_concurrent(api, args)
                if args.paced_clients:
                    print(f"{args.runs} runs triggered by {args.paced_clients} connections ...", flush=True)
                    sc["concurrent_paced"] = bench_concurrent(api, args, args.paced_clients)
            if "fanout" in only:
                print(f"fan-out of {args.fanout} ...", flush=True)
                sc["fanout"] = bench_fanout(api, args)
            errors = sum(int(fig.get("errors", 0)) for fig in sc.values())
            if args.py_spy:
                results["profiles"] = profile_scenarios(api, server, args, workdir)
        finally:
            api.close()
            results["server_errors"] = server_errors(server, args.keep_log)
            server.stop()
    results["cpu_calibration_after_s"] = cpu_calibration()
    results["errors"] = errors
    print(write(results, to_files))
    if not to_files:
        print(json.dumps(results["scenarios"], indent=1)[:20000] if not quick else "")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
