"""Run the training pipeline template against the services of `make run`, and say how it went.

    make run                                          # in one terminal
    uv run python scripts/dev/run_training_pipeline.py                 # in another
    uv run python scripts/dev/run_training_pipeline.py --dataset wine --seed 7 --no-promote

Loads the template (``POST /api/pipelines``: a new version only when the definition changed),
starts a run, follows its tasks until it ends, then prints the search's best trial, the test
metrics and the registry's decision. Service URLs come from ``MLOPS_PIPELINE_ORCHESTRATOR_URL``,
``MLOPS_MODEL_REGISTRY_URL`` and ``MLOPS_EXPERIMENT_TRACKING_URL`` (defaults: the ports of
``make run``), the API key from ``MLOPS_API_KEY``. Exit status: 0 succeeded, 1 failed, 2 a
service is unreachable or refused the request.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from typing import Any

import httpx
from mlops_client.config import service_url
from pipeline_orchestrator.templates import training_pipeline

FINISHED = ("succeeded", "failed", "cancelled")
DONE = ("succeeded", "cached", "failed", "upstream_failed", "skipped", "cancelled")


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="train-classifier", help="the pipeline's name")
    parser.add_argument("--dataset", choices=["breast_cancer", "iris", "wine"], help="default breast_cancer")
    parser.add_argument("--model-name", help="registered model name (default classifier)")
    parser.add_argument("--metric", choices=["accuracy", "f1", "precision", "recall", "balanced_accuracy"])
    parser.add_argument("--seed", type=int, help="split, folds and forest seed (default 42)")
    parser.add_argument("--test-size", type=float, help="held-out fraction (default 0.25)")
    parser.add_argument("--cv-folds", type=int, help="cross-validation folds per trial (default 3)")
    parser.add_argument("--no-promote", action="store_true", help="register without moving 'production'")
    parser.add_argument(
        "--n-trials", type=int, help="search size (default 8); a definition field: makes a new version"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run")
    return parser.parse_args(argv)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "dataset": args.dataset,
        "model_name": args.model_name,
        "metric": args.metric,
        "seed": args.seed,
        "test_size": args.test_size,
        "cv_folds": args.cv_folds,
        "promote": False if args.no_promote else None,
    }
    return {k: v for k, v in given.items() if v is not None}


def _client(url: str) -> httpx.Client:
    key = os.environ.get("MLOPS_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def _check_services(urls: dict[str, str]) -> bool:
    ok = True
    for name, url in urls.items():
        try:
            healthy = httpx.get(f"{url}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if not healthy:
            print(f"{name} is not answering at {url}", file=sys.stderr)
            ok = False
    if not ok:
        print(
            "start the platform with `make run` in another terminal (or set the MLOPS_*_URL variables)",
            file=sys.stderr,
        )
    return ok


def _error(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{response.status_code} {error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return f"{response.status_code}: {response.text[:500]}"


def _seconds(task: dict[str, Any]) -> str:
    if not task.get("started_at") or not task.get("finished_at"):
        return ""
    took = datetime.fromisoformat(task["finished_at"]) - datetime.fromisoformat(task["started_at"])
    return f"{took.total_seconds():6.1f}s"


def _follow(api: httpx.Client, run_id: str, n_trials: int, timeout: float) -> dict[str, Any] | None:
    """Print each task as it finishes (and the search's progress); the finished run, or None."""
    deadline = time.monotonic() + timeout
    reported: set[str] = set()
    trials_seen = -1
    while True:
        response = api.get(f"/api/runs/{run_id}")
        if response.status_code != 200:
            print(f"cannot read run {run_id}: {_error(response)}", file=sys.stderr)
            return None
        run: dict[str, Any] = response.json()
        trials = [t for t in run["tasks"] if t["parent"]]
        done = sum(t["state"] in DONE for t in trials)
        if trials and done != trials_seen:
            trials_seen = done
            running = sum(t["state"] == "running" for t in trials)
            print(f"  {'tune':<10} {done}/{n_trials} trials done, {running} running", flush=True)
        for task in run["tasks"]:
            if task["parent"] or task["name"] in reported or task["state"] not in DONE:
                continue
            reported.add(task["name"])
            cached = f" (from run {task['cached_from']})" if task.get("cached_from") else ""
            print(f"  {task['name']:<10} {task['state']:<16}{_seconds(task)}{cached}", flush=True)
        if run["state"] in FINISHED:
            return run
        if time.monotonic() > deadline:
            print(f"run {run_id} still {run['state']} after {timeout:.0f}s; it goes on", file=sys.stderr)
            return None
        time.sleep(1.0)


def _report(run: dict[str, Any], registry_url: str, tracking_url: str) -> None:
    tasks = {t["name"]: t for t in run["tasks"] if not t["parent"]}
    out = {name: task.get("outputs") or {} for name, task in tasks.items()}
    print(f"\nrun {run['id']} {run['state']} ({run['pipeline']} v{run['pipeline_version']})")
    if out.get("load"):
        load = out["load"]
        print(
            f"  data      {load['dataset']}: {load['n_train']} train / {load['n_test']} test rows, "
            f"{load['n_features']} features, classes {load['train_class_counts']}"
        )
    if out.get("tune"):
        tune = out["tune"]
        print(
            f"  search    best cv {run['parameters'].get('metric')} = {tune['best_value']:.4f} "
            f"with {tune['best_params']} "
            f"(trial {tune['best_trial']} of {tune['n_trials']}, {tune['n_failed']} failed)"
        )
        if tune.get("parent_run_id"):
            print(f"            trials nested under tracking run {tune['parent_run_id']}")
    if out.get("evaluate"):
        metrics = out["evaluate"]["metrics"]
        print("  test      " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if out.get("log"):
        log = out["log"]
        print(
            f"  tracking  run {log['run_id']} in experiment {log['experiment']!r} "
            f"({tracking_url}/api/experiments/{log['experiment_id']}/runs/{log['run_id']})"
        )
    if out.get("register"):
        reg = out["register"]
        if reg.get("registered"):
            alias = f", now {reg['name']}@{reg['alias']}" if reg.get("alias") else " (alias unchanged)"
            print(
                f"  registry  registered {reg['uri']}{alias}"
                f" ({registry_url}/api/models/{reg['name']}/versions/{reg['version']})"
            )
        else:
            print(f"  registry  not registered: {reg.get('reason') or reg}")
    for name, task in tasks.items():
        if task["state"] == "failed":
            error = (task.get("error") or "").strip().splitlines()
            print(f"\n  {name} failed:\n    " + "\n    ".join(error[-15:]), file=sys.stderr)
            print(f"    full log: GET /api/runs/{run['id']}/tasks/{name}/logs", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    urls = {
        "pipeline orchestrator": service_url("pipeline_orchestrator"),
        "model registry": service_url("model_registry"),
        "experiment tracking": service_url("experiment_tracking"),
    }
    if not _check_services(urls):
        return 2
    definition = training_pipeline(args.pipeline, n_trials=args.n_trials)
    with _client(urls["pipeline orchestrator"]) as api:
        response = api.post("/api/pipelines", json=definition)
        if response.status_code not in (200, 201):
            print(f"the orchestrator refused the template: {_error(response)}", file=sys.stderr)
            return 2
        pipeline = response.json()
        change = "new version" if response.status_code == 201 else "unchanged"
        print(f"pipeline {pipeline['name']} v{pipeline['version']} ({change})")
        parameters = _parameters(args)
        response = api.post(f"/api/pipelines/{args.pipeline}/runs", json={"parameters": parameters})
        if response.status_code != 201:
            print(f"the run was refused: {_error(response)}", file=sys.stderr)
            return 2
        run_id = response.json()["id"]
        shown = ", ".join(f"{k}={v}" for k, v in parameters.items()) or "defaults"
        print(f"run {run_id} started ({shown})", flush=True)
        started = time.monotonic()
        tune = next(t for t in definition["tasks"] if t["name"] == "tune")
        run = _follow(api, run_id, int(tune["n_trials"]), args.timeout)
    if run is None:
        return 1
    _report(run, urls["model registry"], urls["experiment tracking"])
    print(f"\ndone in {time.monotonic() - started:.1f}s")
    return 0 if run["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
