"""The worker API: remote workers (Celery, Kubernetes Jobs) report on their attempt here.

Every call carries the attempt's secret in ``X-Attempt-Token``. A report about an attempt that is
no longer current (cancelled, declared lost, already finished) is refused with 409, and a
heartbeat answers ``continue: false``: the worker stops, and nothing completes twice.
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from fastapi import APIRouter, Header, Request
from mlops_kit.bounds import NulFreeStr as Text
from mlops_kit.bounds import PathStr
from mlops_kit.deps import NOT_AUDITED, SessionDep
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from pipeline_orchestrator.api.answers import LeaseRead, Recorded
from pipeline_orchestrator.deps import engine, wake_after_commit
from pipeline_orchestrator.engine.state import hash_token, utcnow
from pipeline_orchestrator.errors import AttemptNotCurrent, AttemptNotFound, BadAttemptToken
from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.protocol import MAX_ERROR, TaskResult
from pipeline_orchestrator.tables import Attempt, AttemptState

router = APIRouter(tags=["workers"])
Token = Header(alias="X-Attempt-Token", min_length=1, max_length=200)


def _attempt(session: Session, attempt_id: str, token: str) -> Attempt:
    attempt = session.get(Attempt, attempt_id) if len(attempt_id) <= 36 else None
    if attempt is None:
        raise AttemptNotFound(f"attempt {attempt_id!r} not found")
    if not attempt.token_hash or not hmac.compare_digest(attempt.token_hash, hash_token(token)):
        raise BadAttemptToken("wrong attempt token")
    return attempt


class WorkerHello(BaseModel):
    model_config = ConfigDict(extra="ignore")

    worker: str | None = Field(default=None, max_length=200)


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
) -> dict[str, Any]:
    lock_engine(session)
    attempt = _attempt(session, attempt_id, token)
    worker = body.worker if body else None
    if attempt.worker and worker and attempt.worker != worker:
        # the broker delivered the attempt twice: the first worker keeps it
        return {"continue": False}
    return {"continue": engine(request).renew_lease(session, attempt_id, worker)}


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
) -> dict[str, Any]:
    _attempt(session, attempt_id, token)
    return {"continue": engine(request).renew_lease(session, attempt_id, body.worker if body else None)}


@router.post("/api/workers/attempts/{attempt_id}/logs", status_code=204)
async def attempt_logs(attempt_id: PathStr, request: Request, token: str = Token) -> None:
    import anyio

    data = await request.body()
    db = request.app.state.db

    def append() -> None:
        with db.session(write=False) as session:
            attempt = _attempt(session, attempt_id, token)
            path = attempt.log_path
        if path and data:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab") as fh:
                fh.write(data)

    await anyio.to_thread.run_sync(append)


class Finished(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    outputs: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"maxProperties": 10_000})
    error: Text | None = Field(default=None, max_length=MAX_ERROR, description="the tail is kept")
    exit_status: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


@router.post(
    "/api/workers/attempts/{attempt_id}/finished",
    openapi_extra=NOT_AUDITED,
    response_model=Recorded,
)
def attempt_finished(
    attempt_id: PathStr, body: Finished, request: Request, session: SessionDep, token: str = Token
) -> dict[str, Any]:
    lock_engine(session)
    attempt = _attempt(session, attempt_id, token)
    if attempt.state != AttemptState.RUNNING:
        raise AttemptNotCurrent(
            f"attempt {attempt_id} is {attempt.state}; its result is not recorded",
            {"state": attempt.state},
        )
    result = TaskResult(ok=body.ok, outputs=body.outputs, error=body.error, exit_status=body.exit_status)
    run_id = engine(request).record_result(session, attempt_id, result, utcnow())
    if run_id is None:
        raise AttemptNotCurrent(f"attempt {attempt_id} is no longer current")
    wake_after_commit(request, session, [run_id])
    return {"recorded": True}
