"""Runs: lists with progress, a run with its tasks and attempts, cancel, retry, and where an
attempt's log is. Framework-free; raises the errors of errors.py."""

from __future__ import annotations

import os
import re
from collections import defaultdict

from sqlalchemy.orm import Session

from pipeline_orchestrator.api.serialize import run_json
from pipeline_orchestrator.engine.state import Definitions, utcnow
from pipeline_orchestrator.errors import (
    AmbiguousRunId,
    AttemptNotFound,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
    TaskNotFound,
)
from pipeline_orchestrator.runs import repository
from pipeline_orchestrator.runs.schemas import RunRead
from pipeline_orchestrator.tables import Attempt, Run, RunState, TaskInstance, TaskState

# a run id's first characters (at least 4): lower-case hex and dashes, so no LIKE wildcard
_ID_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]{3,34}")


def lock(session: Session) -> None:
    """The engine lock, taken before a run's state is read to be changed."""
    repository.lock(session)


def load_run(session: Session, run_id: str) -> Run:
    """The run with this id, or with this id prefix (the CLI shows the first 8 characters)."""
    run = repository.get(session, run_id) if len(run_id) <= 36 else None
    if run is None and _ID_PREFIX.fullmatch(run_id):
        run = _run_by_prefix(session, run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found", {"run_id": run_id})
    return run


def _run_by_prefix(session: Session, prefix: str) -> Run | None:
    ids = repository.ids_by_prefix(session, prefix, limit=6)
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise AmbiguousRunId(
            f"run id {prefix!r} matches several runs ({shown}); give more of the id",
            {"run_id": prefix, "matches": list(ids[:5])},
        )
    return repository.get(session, ids[0]) if ids else None


def list_runs(
    session: Session,
    pipeline_id: str | None,
    state: str | None,
    trigger: str | None,
    limit: int,
    offset: int,
) -> tuple[list[RunRead], int]:
    """A page of runs, newest first, each with the progress of its top-level tasks."""
    runs, total = repository.page(session, pipeline_id, state, trigger, limit, offset)
    counts = repository.top_task_states(session, [r.id for r in runs]) if runs else {}
    items = []
    for r in runs:
        states = counts.get(r.id, {})
        total_tasks = sum(states.values())
        done = sum(n for s, n in states.items() if s in TaskState.DONE)
        progress = {
            "total": total_tasks,
            "done": done,
            "percent": round(100.0 * done / total_tasks, 1) if total_tasks else 100.0,
            "states": states,
        }
        items.append(RunRead.model_validate(run_json(r) | {"progress": progress}))
    return items, total


def run_read(run: Run) -> RunRead:
    """A run without its tasks (what creating one answers)."""
    return RunRead.model_validate(run_json(run))


def full_run(session: Session, definitions: Definitions, run: Run) -> RunRead:
    """A run with its tasks, their dependencies and trigger rules, and their attempts."""
    tis = list(repository.task_instances(session, run.id, ordered=True))
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    for a in repository.attempts(session, run.id):
        attempts[a.task_instance_id].append(a)
    definition = definitions.get(session, run.pipeline_id, run.pipeline_version)
    return RunRead.model_validate(
        run_json(
            run,
            tis,
            attempts,
            depends=definition.upstream,
            rules={name: t.trigger_rule for name, t in definition.tasks.items()},
        )
    )


def cancel_run(session: Session, run: Run, ref: str) -> None:
    """Stop the run: a queued run's tasks are cancelled at once, a running run is left to the
    engine to stop (cancelling). The caller holds the engine lock; ``ref`` is the id it was asked by."""
    if run.state in RunState.FINISHED:
        raise RunFinished(f"run {ref} already {run.state}", {"state": run.state})
    if run.state == RunState.QUEUED:
        now = utcnow()
        run.state = RunState.CANCELLED
        run.finished_at = now
        for ti in repository.task_instances(session, run.id):
            ti.state = TaskState.CANCELLED
            ti.finished_at = now
    else:
        run.state = RunState.CANCELLING
    repository.flush(session)


_RESET = (TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.CANCELLED, TaskState.SKIPPED)


def retry_run(session: Session, run: Run, ref: str) -> None:
    """Go on from the failed tasks: failed, upstream-failed, cancelled and skipped tasks are reset;
    succeeded tasks keep their outputs and are not run again. The caller holds the engine lock."""
    if run.state not in (RunState.FAILED, RunState.CANCELLED):
        raise RunNotRetryable(
            f"run {ref} is {run.state}; only a failed or cancelled run can be retried",
            {"state": run.state},
        )
    tis = repository.task_instances(session, run.id)
    reset_hpo = {ti.name for ti in tis if ti.parent is None and ti.kind == "hpo" and ti.state in _RESET}
    for ti in tis:
        if ti.parent is not None:
            # a search that is run again keeps its successful trials and samples the rest anew
            if ti.parent in reset_hpo and ti.state != TaskState.SUCCEEDED:
                repository.delete_trial(session, ti)
            continue
        if ti.state in _RESET:
            _reset(ti)
    run.state = RunState.QUEUED
    run.finished_at = None
    run.error = None
    info = dict(run.trigger_info or {})
    info["retries"] = int(info.get("retries", 0)) + 1
    run.trigger_info = info
    repository.flush(session)


def _reset(ti: TaskInstance) -> None:
    ti.state = TaskState.PENDING
    ti.error = None
    ti.finished_at = None
    ti.next_attempt_at = None
    ti.lost_count = 0
    if ti.kind == "hpo":
        ti.data = None


# logs -----------------------------------------------------------------------------------------


def find_attempt(session: Session, run_id: str, task: str, number: int | None) -> Attempt:
    """Attempt ``number`` (default: the latest) of the run's task; a task served from the cache
    answers with the attempt that produced the cached outputs."""
    run = load_run(session, run_id)
    ti = repository.find_task(session, run.id, task)
    if ti is None:
        raise TaskNotFound(f"run {run_id} has no task {task!r}", {"task": task})
    attempt = repository.find_attempt(session, ti.id, number)
    if attempt is None and ti.cached_from and ti.cache_key:
        return _cached_attempt(session, ti, run_id, task, number)
    if attempt is None:
        what = f"no attempt {number}" if number else "no attempt yet"
        raise AttemptNotFound(f"task {task!r} of run {run_id} has {what}", {"task": task})
    return attempt


def _cached_attempt(
    session: Session, ti: TaskInstance, run_id: str, task: str, number: int | None
) -> Attempt:
    entry = repository.cache_entry(session, ti.cache_key or "")
    source = None
    if entry is not None and entry.run_id == ti.cached_from:
        source = repository.find_task(session, entry.run_id, entry.task)
    if source is not None:
        attempt = repository.find_attempt(session, source.id, number)
        if attempt is not None:
            return attempt
    raise AttemptNotFound(
        f"task {task!r} of run {run_id} was served from the cache of run {ti.cached_from}, "
        "whose attempt is no longer there",
        {"task": task, "cached_from": ti.cached_from},
    )


def read_log(path: str | None, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of a log file from ``offset``; nothing past its end."""
    if not path or not os.path.exists(path) or offset >= os.path.getsize(path):
        return b""  # past the end (a file system cannot even seek to every offset a client may ask)
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(limit)
