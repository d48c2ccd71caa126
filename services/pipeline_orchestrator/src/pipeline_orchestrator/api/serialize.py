"""JSON shapes of the API's resources (see API.md)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pipeline_orchestrator.tables import (
    AlertRoute,
    Attempt,
    Pipeline,
    PipelineVersion,
    Run,
    Schedule,
    TaskInstance,
    TaskState,
    Webhook,
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def pipeline_json(
    p: Pipeline, version: PipelineVersion | None = None, *, versions: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "version": p.latest_version,
        "versions": versions if versions is not None else p.latest_version,
        "max_active_runs": p.max_active_runs,
        "tags": p.tags or {},
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }
    if version is not None:
        out["definition"] = version.definition
    return out


def version_json(v: PipelineVersion) -> dict[str, Any]:
    return {"version": v.version, "created_at": iso(v.created_at), "definition": v.definition}


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id,
        "number": a.number,
        "state": a.state,
        "executor": a.executor,
        "worker": a.worker,
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at),
        "exit_status": a.exit_status,
        "error": a.error,
        "outputs": a.outputs,
    }


def progress(tis: list[TaskInstance]) -> dict[str, Any]:
    top = [ti for ti in tis if ti.parent is None]
    states = Counter(ti.state for ti in top)
    done = sum(n for s, n in states.items() if s in TaskState.DONE)
    total = len(top)
    return {
        "total": total,
        "done": done,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "states": dict(states),
    }


def run_json(
    run: Run,
    tis: list[TaskInstance] | None = None,
    attempts: dict[int, list[Attempt]] | None = None,
    depends: dict[str, list[str]] | None = None,
    rules: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "pipeline_id": run.pipeline_id,
        "pipeline": run.pipeline_name,
        "pipeline_version": run.pipeline_version,
        "state": run.state,
        "parameters": run.parameters,
        "trigger": run.trigger,
        "trigger_info": run.trigger_info or {},
        "logical_date": iso(run.logical_date),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
    }
    if tis is not None:
        out["progress"] = progress(tis)
    if attempts is not None and tis is not None:
        depends = depends or {}
        rules = rules or {}
        out["tasks"] = [
            {
                "name": ti.name,
                "kind": ti.kind,
                "parent": ti.parent,
                "state": ti.state,
                "try_number": ti.try_number,
                "trigger_rule": rules.get(ti.name),
                "depends_on": depends.get(ti.name, []),
                "outputs": ti.outputs,
                "cached_from": ti.cached_from,
                "started_at": iso(ti.started_at),
                "finished_at": iso(ti.finished_at),
                "error": ti.error,
                "next_attempt_at": iso(ti.next_attempt_at),
                "params": (ti.data or {}).get("params") if ti.parent else None,
                "attempts": [attempt_json(a) for a in attempts.get(ti.id, [])],
            }
            for ti in tis
        ]
    return out


def schedule_json(s: Schedule, pipeline_name: str) -> dict[str, Any]:
    return {
        "id": s.id,
        "pipeline_id": s.pipeline_id,
        "pipeline": pipeline_name,
        "cron": s.cron,
        "timezone": s.timezone,
        "parameters": s.parameters or {},
        "catchup": s.catchup,
        "enabled": s.enabled,
        "next_run_at": iso(s.next_run_at),
        "last_run_at": iso(s.last_run_at),
        "created_at": iso(s.created_at),
    }


def alert_route_json(r: AlertRoute, pipeline_name: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "alertname": r.alertname,
        "pipeline_id": r.pipeline_id,
        "pipeline": pipeline_name,
        "match": r.match or {},
        "parameters": r.parameters or {},
        "cooldown_seconds": r.cooldown_seconds,
        "last_fired_at": iso(r.last_fired_at),
        "created_at": iso(r.created_at),
    }


def webhook_json(w: Webhook, pipeline_name: str, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": w.id,
        "pipeline_id": w.pipeline_id,
        "pipeline": pipeline_name,
        "parameters": w.parameters or {},
        "created_at": iso(w.created_at),
    }
    if token:
        out["token"] = token
        out["url"] = f"/api/triggers/webhooks/{token}"
    return out
