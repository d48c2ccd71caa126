"""The worker API: remote workers (Celery, Kubernetes Jobs) report on their attempt here.

Every call carries the attempt's secret in ``X-Attempt-Token``. A report about an attempt that is
no longer current (cancelled, declared lost, already finished) is refused with 409, and a
heartbeat answers ``continue: false``: the worker stops, and nothing completes twice.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Header, Request
from mlops_kit.bounds import PathStr
from mlops_kit.deps import NOT_AUDITED, SessionDep

from pipeline_orchestrator.deps import engine, wake_after_commit
from pipeline_orchestrator.engine.state import utcnow
from pipeline_orchestrator.worker_api import service
from pipeline_orchestrator.worker_api.schemas import Finished, LeaseRead, Recorded, WorkerHello

router = APIRouter(tags=["workers"])
Token = Header(alias="X-Attempt-Token", min_length=1, max_length=200)


@router.post(
    "/api/workers/attempts/{attempt_id}/started",
    openapi_extra=NOT_AUDITED,
    response_model=LeaseRead,
)
def attempt_started(
    attempt_id: PathStr,
    request: Request,
    session: SessionDep,
    body: WorkerHello | None = None,
    token: str = Token,
) -> dict[str, bool]:
    worker = body.worker if body else None
    return {"continue": service.started(session, engine(request), attempt_id, token, worker)}


@router.post(
    "/api/workers/attempts/{attempt_id}/heartbeat",
    openapi_extra=NOT_AUDITED,
    response_model=LeaseRead,
)
def attempt_heartbeat(
    attempt_id: PathStr,
    request: Request,
    session: SessionDep,
    body: WorkerHello | None = None,
    token: str = Token,
) -> dict[str, bool]:
    worker = body.worker if body else None
    return {"continue": service.heartbeat(session, engine(request), attempt_id, token, worker)}


@router.post("/api/workers/attempts/{attempt_id}/logs", status_code=204)
async def attempt_logs(attempt_id: PathStr, request: Request, token: str = Token) -> None:
    data = await request.body()
    db = request.app.state.db

    def append() -> None:
        with db.session(write=False) as session:
            path = service.log_path(session, attempt_id, token)
        service.append_log(path, data)

    await anyio.to_thread.run_sync(append)


@router.post(
    "/api/workers/attempts/{attempt_id}/finished",
    openapi_extra=NOT_AUDITED,
    response_model=Recorded,
)
def attempt_finished(
    attempt_id: PathStr, body: Finished, request: Request, session: SessionDep, token: str = Token
) -> dict[str, bool]:
    run_id = service.finished(session, engine(request), attempt_id, token, body, utcnow())
    wake_after_commit(request, session, [run_id])
    return {"recorded": True}
