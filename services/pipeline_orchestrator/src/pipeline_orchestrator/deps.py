"""Load-or-404 dependencies shared by the orchestrator's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from mlops_kit.bounds import PathStr
from mlops_kit.db import after_commit
from mlops_kit.deps import SessionDep, is_read
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.core import Engine
from pipeline_orchestrator.pipelines import service as pipelines
from pipeline_orchestrator.runs import service as runs
from pipeline_orchestrator.tables import Pipeline, Run


def engine(request: Request) -> Engine:
    eng: Engine = request.app.state.engine
    return eng


def wake_after_commit(request: Request, session: Session, run_ids: list[str] | None = None) -> None:
    """Wake the engine for these runs once the request's transaction has committed."""
    eng = engine(request)
    after_commit(session, lambda: eng.wake_many(run_ids or []))


def _pipeline(pipeline: PathStr, session: SessionDep) -> Pipeline:
    return pipelines.load_pipeline(session, pipeline)


def _run(run_id: PathStr, request: Request, session: SessionDep) -> Run:
    # a change of run state (cancel, retry) takes the engine lock before the run is read, so it
    # never acts on a state a scheduling pass is changing
    if not is_read(request):
        runs.lock(session)
    return runs.load_run(session, run_id)


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
RunDep = Annotated[Run, Depends(_run)]
