"""The rules of the worker API: a report counts only with the attempt's token, and only while the
attempt is current (a cancelled, lost or finished attempt is told to stop; nothing completes twice).
"""

from __future__ import annotations

import hmac
import os
from datetime import datetime

from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.core import Engine
from pipeline_orchestrator.engine.state import hash_token
from pipeline_orchestrator.errors import AttemptNotCurrent, AttemptNotFound, BadAttemptToken
from pipeline_orchestrator.locks import lock_engine
from pipeline_orchestrator.protocol import TaskResult
from pipeline_orchestrator.runs import repository
from pipeline_orchestrator.tables import Attempt, AttemptState
from pipeline_orchestrator.worker_api.schemas import Finished


def authenticated_attempt(session: Session, attempt_id: str, token: str) -> Attempt:
    attempt = repository.get_attempt(session, attempt_id) if len(attempt_id) <= 36 else None
    if attempt is None:
        raise AttemptNotFound(f"attempt {attempt_id!r} not found")
    if not attempt.token_hash or not hmac.compare_digest(attempt.token_hash, hash_token(token)):
        raise BadAttemptToken("wrong attempt token")
    return attempt


def started(session: Session, engine: Engine, attempt_id: str, token: str, worker: str | None) -> bool:
    """Whether the worker goes on: false when the broker delivered the attempt twice (the first
    worker keeps it) or the attempt is no longer current."""
    lock_engine(session)
    attempt = authenticated_attempt(session, attempt_id, token)
    if attempt.worker and worker and attempt.worker != worker:
        return False
    return engine.renew_lease(session, attempt_id, worker)


def heartbeat(session: Session, engine: Engine, attempt_id: str, token: str, worker: str | None) -> bool:
    authenticated_attempt(session, attempt_id, token)
    return engine.renew_lease(session, attempt_id, worker)


def log_path(session: Session, attempt_id: str, token: str) -> str | None:
    return authenticated_attempt(session, attempt_id, token).log_path


def append_log(path: str | None, data: bytes) -> None:
    if path and data:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab") as fh:
            fh.write(data)


def finished(
    session: Session, engine: Engine, attempt_id: str, token: str, body: Finished, now: datetime
) -> str:
    """Record the attempt's result; the id of the run to wake."""
    lock_engine(session)
    attempt = authenticated_attempt(session, attempt_id, token)
    if attempt.state != AttemptState.RUNNING:
        raise AttemptNotCurrent(
            f"attempt {attempt_id} is {attempt.state}; its result is not recorded",
            {"state": attempt.state},
        )
    result = TaskResult(ok=body.ok, outputs=body.outputs, error=body.error, exit_status=body.exit_status)
    run_id = engine.record_result(session, attempt_id, result, now)
    if run_id is None:
        raise AttemptNotCurrent(f"attempt {attempt_id} is no longer current")
    return run_id
