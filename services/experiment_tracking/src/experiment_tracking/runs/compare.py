"""Comparing runs: side by side, best run, histories of several runs."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from experiment_tracking import validation
from experiment_tracking.errors import RunNotFound
from experiment_tracking.runs import repository as repo
from experiment_tracking.runs import service
from experiment_tracking.values import from_stored, json_number


def side_by_side(session: Session, run_ids: list[str]) -> dict[str, Any]:
    for run_id in run_ids:
        service.load_row(session, run_id)
    runs = service.read_many(session, list(dict.fromkeys(run_ids)))
    params: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for run in runs:
        for key in run["params"]:
            params.setdefault(key, {})
        for m in run["metrics"]:
            metrics.setdefault(m["key"], {})
    for run in runs:
        latest = {m["key"]: json_number(m["value"]) for m in run["metrics"]}
        for key, values in params.items():
            values[run["id"]] = run["params"].get(key)
        for key, values in metrics.items():
            values[run["id"]] = latest.get(key)
    return {
        "runs": [
            {"id": r["id"], "name": r["name"], "experiment_id": r["experiment_id"], "status": r["status"]}
            for r in runs
        ],
        "params": dict(sorted(params.items())),
        "metrics": dict(sorted(metrics.items())),
        "differing_params": sorted(k for k, v in params.items() if len(set(v.values())) > 1),
        "differing_metrics": sorted(k for k, v in metrics.items() if len(set(v.values())) > 1),
    }


def best_run(
    session: Session, experiment_id: str, metric: str, mode: str, filter_string: str | None
) -> dict[str, Any]:
    validation.key("metric", metric)
    direction = "DESC" if mode == "max" else "ASC"
    page_token = None
    while True:
        found, page_token = service.search(
            session,
            [experiment_id],
            filter_string=filter_string,
            order_by=[f"metrics.`{metric}` {direction}"],
            max_results=100,
            page_token=page_token,
        )
        for run in found:
            value = next((m["value"] for m in run["metrics"] if m["key"] == metric), None)
            if value is not None and not math.isnan(value):
                return run
        if not page_token or not found:
            raise RunNotFound(
                f"no run in experiment {experiment_id} has a value for metric {metric!r}",
                {"experiment_id": experiment_id, "metric": metric},
            )


def histories(session: Session, run_ids: list[str], key: str, limit: int) -> dict[str, Any]:
    for run_id in run_ids:
        service.load_row(session, run_id)
    series: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    for run_id, value, is_nan, ts, step in repo.histories(session, run_ids, key, limit):
        series[run_id].append(
            {"step": step, "value": json_number(from_stored(value, is_nan)), "timestamp": ts}
        )
    return {"key": key, "series": [{"run_id": r, "points": p} for r, p in series.items()]}
