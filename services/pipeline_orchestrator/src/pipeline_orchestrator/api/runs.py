"""`/api/runs`: list, inspect (tasks and attempts), logs, cancel, retry."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from mlops_kit.bounds import INT64_SCHEMA_MAX, MAX_OFFSET, PathStr
from mlops_kit.db import count_rows
from mlops_kit.deps import SessionDep
from mlops_kit.openapi import answers, file_responses
from mlops_kit.pagination import Limit, Offset, page_fields
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.api.answers import RunPage, RunRead
from pipeline_orchestrator.api.common import engine, get_pipeline, get_run, wake_after_commit
from pipeline_orchestrator.api.serialize import run_json
from pipeline_orchestrator.errors import AttemptNotFound, RunFinished, RunNotRetryable, TaskNotFound
from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.tables import (
    Attempt,
    AttemptState,
    Run,
    RunState,
    TaskCache,
    TaskInstance,
    TaskState,
)

router = APIRouter(tags=["runs"])
RunStateParam = Literal["queued", "running", "succeeded", "failed", "cancelling", "cancelled"]


def _list(
    session: Session,
    pipeline: str | None,
    state: str | None,
    trigger: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    query = select(Run)
    if pipeline:
        query = query.where(Run.pipeline_id == get_pipeline(session, pipeline).id)
    if state:
        query = query.where(Run.state == state)
    if trigger:
        query = query.where(Run.trigger == trigger)
    total = count_rows(session, query)
    runs = session.scalars(query.order_by(Run.created_at.desc(), Run.id).limit(limit).offset(offset)).all()
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if runs:
        rows = session.execute(
            select(TaskInstance.run_id, TaskInstance.state, func.count())
            .where(TaskInstance.run_id.in_([r.id for r in runs]), TaskInstance.parent.is_(None))
            .group_by(TaskInstance.run_id, TaskInstance.state)
        ).all()
        for run_id, task_state, n in rows:
            counts[run_id][task_state] = n
    items = []
    for r in runs:
        states = counts.get(r.id, {})
        total_tasks = sum(states.values())
        done = sum(n for s, n in states.items() if s in TaskState.DONE)
        items.append(
            run_json(r)
            | {
                "progress": {
                    "total": total_tasks,
                    "done": done,
                    "percent": round(100.0 * done / total_tasks, 1) if total_tasks else 100.0,
                    "states": states,
                }
            }
        )
    return {"items": items, **page_fields(total, limit, offset)}


@router.get("/api/runs", response_model=None, responses=answers(RunPage))
def list_runs(
    session: SessionDep,
    pipeline: str | None = Query(default=None, max_length=100, description="a pipeline id or name"),
    state: RunStateParam | None = None,
    trigger: str | None = Query(default=None, max_length=16),
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return _list(session, pipeline, state, trigger, limit, offset)


@router.get("/api/pipelines/{pipeline}/runs", response_model=None, responses=answers(RunPage))
def list_pipeline_runs(
    pipeline: PathStr,
    session: SessionDep,
    state: RunStateParam | None = None,
    trigger: str | None = Query(default=None, max_length=16),
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    return _list(session, pipeline, state, trigger, limit, offset)


def full_run(request: Request, session: Session, run: Run) -> dict[str, Any]:
    tis = list(
        session.scalars(
            select(TaskInstance).where(TaskInstance.run_id == run.id).order_by(TaskInstance.id)
        ).all()
    )
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    for a in session.scalars(select(Attempt).where(Attempt.run_id == run.id).order_by(Attempt.number)).all():
        attempts[a.task_instance_id].append(a)
    definition = engine(request).definitions.get(session, run.pipeline_id, run.pipeline_version)
    return run_json(
        run,
        tis,
        attempts,
        depends=definition.upstream,
        rules={name: t.trigger_rule for name, t in definition.tasks.items()},
    )


@router.get("/api/runs/{run_id}", response_model=None, responses=answers(RunRead))
def read_run(run_id: PathStr, request: Request, session: SessionDep) -> dict[str, Any]:
    return full_run(request, session, get_run(session, run_id))


@router.post(
    "/api/runs/{run_id}/cancel", status_code=202, response_model=None, responses=answers(RunRead, 202)
)
def cancel_run(run_id: PathStr, request: Request, session: SessionDep) -> dict[str, Any]:
    """Stop the run: pending tasks are cancelled, running attempts are stopped."""
    lock_engine(session)
    run = get_run(session, run_id)
    if run.state in RunState.FINISHED:
        raise RunFinished(f"run {run_id} already {run.state}", {"state": run.state})
    if run.state == RunState.QUEUED:
        now = _now()
        run.state = RunState.CANCELLED
        run.finished_at = now
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id)).all():
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
    else:
        run.state = RunState.CANCELLING
    session.flush()
    wake_after_commit(request, session, [run.id])
    return full_run(request, session, run)


@router.post(
    "/api/runs/{run_id}/retry", status_code=202, response_model=None, responses=answers(RunRead, 202)
)
def retry_run(run_id: PathStr, request: Request, session: SessionDep) -> dict[str, Any]:
    """Go on from the failed tasks: failed, upstream-failed, cancelled and skipped tasks are reset;
    succeeded tasks keep their outputs and are not run again."""
    lock_engine(session)
    run = get_run(session, run_id)
    if run.state not in (RunState.FAILED, RunState.CANCELLED):
        raise RunNotRetryable(
            f"run {run_id} is {run.state}; only a failed or cancelled run can be retried",
            {"state": run.state},
        )
    reset = (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED, TaskState.SKIPPED)
    tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == run.id)).all()
    reset_hpo = {ti.name for ti in tis if ti.parent is None and ti.kind == "hpo" and ti.state in reset}
    for ti in tis:
        if ti.parent is not None:
            # a search that is run again keeps its successful trials and samples the rest anew
            if ti.parent in reset_hpo and ti.state != TaskState.SUCCEEDED:
                session.execute(delete(Attempt).where(Attempt.task_instance_id == ti.id))
                session.delete(ti)
            continue
        if ti.state in reset:
            ti.state = TaskState.PENDING
            ti.error = None
            ti.finished_at = None
            ti.next_attempt_at = None
            ti.lost_count = 0
            if ti.kind == "hpo":
                ti.data = None
    run.state = RunState.QUEUED
    run.finished_at = None
    run.error = None
    info = dict(run.trigger_info or {})
    info["retries"] = int(info.get("retries", 0)) + 1
    run.trigger_info = info
    session.flush()
    wake_after_commit(request, session, [run.id])
    return full_run(request, session, run)


def _now() -> Any:
    from pipeline_orchestrator.engine.state import utcnow

    return utcnow()


# logs ----------------------------------------------------------------------------------------


def _attempt(session: Session, run_id: str, task: str, number: int | None) -> Attempt:
    run = get_run(session, run_id)
    ti = session.scalar(select(TaskInstance).where(TaskInstance.run_id == run.id, TaskInstance.name == task))
    if ti is None:
        raise TaskNotFound(f"run {run_id} has no task {task!r}", {"task": task})
    query = select(Attempt).where(Attempt.task_instance_id == ti.id)
    query = (
        query.where(Attempt.number == number) if number else query.order_by(Attempt.number.desc()).limit(1)
    )
    attempt = session.scalar(query)
    if attempt is None and ti.cached_from and ti.cache_key:
        return _cached_attempt(session, ti, run_id, task, number)
    if attempt is None:
        what = f"no attempt {number}" if number else "no attempt yet"
        raise AttemptNotFound(f"task {task!r} of run {run_id} has {what}", {"task": task})
    return attempt


def _cached_attempt(
    session: Session, ti: TaskInstance, run_id: str, task: str, number: int | None
) -> Attempt:
    """A task served from the cache has no attempt of its own: its logs are those of the attempt
    that produced the cached outputs (in the run it was cached from)."""
    entry = session.get(TaskCache, ti.cache_key)
    source = None
    if entry is not None and entry.run_id == ti.cached_from:
        source = session.scalar(
            select(TaskInstance).where(TaskInstance.run_id == entry.run_id, TaskInstance.name == entry.task)
        )
    if source is not None:
        query = select(Attempt).where(Attempt.task_instance_id == source.id)
        query = query.where(Attempt.number == number) if number else query.order_by(Attempt.number.desc())
        attempt = session.scalar(query.limit(1))
        if attempt is not None:
            return attempt
    raise AttemptNotFound(
        f"task {task!r} of run {run_id} was served from the cache of run {ti.cached_from}, "
        "whose attempt is no longer there",
        {"task": task, "cached_from": ti.cached_from},
    )


def _read(path: str | None, offset: int, limit: int) -> bytes:
    if not path or not os.path.exists(path) or offset >= os.path.getsize(path):
        return b""  # past the end (a file system cannot even seek to every offset a client may ask)
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(limit)


@router.get(
    "/api/runs/{run_id}/tasks/{task}/logs",
    response_class=Response,
    responses=file_responses(200, media_types=("text/plain; charset=utf-8",)),
)
async def task_logs(
    run_id: PathStr,
    task: PathStr,
    request: Request,
    attempt: int | None = Query(
        default=None, ge=1, le=INT64_SCHEMA_MAX, description="default: the latest attempt"
    ),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET, description="byte offset to read from"),
    follow: bool = Query(default=False, description="stream until the attempt ends"),
) -> Response:
    """An attempt's log as text. `X-Next-Offset` says where to continue, `X-Attempt-State` how the
    attempt stands; with `follow=true` the response streams until the attempt ends."""
    db = request.app.state.db
    chunk = request.app.state.settings.log_chunk_bytes

    def lookup() -> tuple[str, str | None, int]:
        with db.session(write=False) as session:
            a = _attempt(session, run_id, task, attempt)
            return a.state, a.log_path, a.number

    import anyio

    state, path, number = await anyio.to_thread.run_sync(lookup)

    def attempt_state() -> str:
        # the attempt being streamed, even if a retry started a newer one meanwhile
        with db.session(write=False) as session:
            return _attempt(session, run_id, task, number).state

    headers = {"X-Attempt": str(number), "Cache-Control": "no-store"}
    if not follow:
        data = await anyio.to_thread.run_sync(_read, path, offset, chunk)
        headers |= {"X-Next-Offset": str(offset + len(data)), "X-Attempt-State": state}
        return Response(data, media_type="text/plain; charset=utf-8", headers=headers)

    async def stream() -> AsyncIterator[bytes]:
        position = offset
        current = state
        while True:
            data = await anyio.to_thread.run_sync(_read, path, position, chunk)
            if data:
                position += len(data)
                yield data
                continue
            if current != AttemptState.RUNNING:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.25)
            current = await anyio.to_thread.run_sync(attempt_state)

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8", headers=headers)
