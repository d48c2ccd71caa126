"""Lookups shared by the routers."""

from __future__ import annotations

import hmac
import re
import uuid

from fastapi import Request
from mlops_kit.auth import Principal, Role
from mlops_kit.db import after_commit
from mlops_kit.deps import authenticate, authorize
from mlops_kit.errors import Unauthorized
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pipeline_orchestrator.engine.core import Engine
from pipeline_orchestrator.errors import (
    AmbiguousRunId,
    PipelineNotFound,
    PipelineVersionNotFound,
    RunNotFound,
)
from pipeline_orchestrator.tables import Pipeline, PipelineVersion, Run

# a run id's first characters (at least 4): lower-case hex and dashes, so no LIKE wildcard
_ID_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]{3,34}")


def engine(request: Request) -> Engine:
    return request.app.state.engine


def wake_after_commit(request: Request, session: Session, run_ids: list[str] | None = None) -> None:
    eng = engine(request)
    after_commit(session, lambda: eng.wake_many(run_ids or []))


async def authorize_alertmanager(request: Request) -> Principal:
    """AlertManager's webhook: the alert webhook token when one is set, else the API-key rule of
    every write (an editor key; open only when no keys are configured)."""
    token = request.app.state.settings.alert_webhook_token
    if token is None:
        return await authorize(request, await authenticate(request))
    auth = request.headers.get("authorization") or ""
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not presented or not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise Unauthorized(
            "missing or wrong alert webhook token: send 'Authorization: Bearer <token>' "
            "(MLOPS_PIPELINE_ORCHESTRATOR_ALERT_WEBHOOK_TOKEN)"
        )
    principal = request.state.principal = Principal(name="alertmanager", role=Role.editor)
    return principal


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def get_pipeline(session: Session, ref: str) -> Pipeline:
    condition = or_(Pipeline.id == ref, Pipeline.name == ref) if _is_uuid(ref) else Pipeline.name == ref
    pipeline = session.scalar(select(Pipeline).where(condition))
    if pipeline is None:
        raise PipelineNotFound(f"pipeline {ref!r} not found", {"pipeline": ref})
    return pipeline


def get_version(session: Session, pipeline: Pipeline, version: int | None = None) -> PipelineVersion:
    number = version or pipeline.latest_version
    row = session.scalar(
        select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.version == number
        )
    )
    if row is None:
        raise PipelineVersionNotFound(
            f"pipeline {pipeline.name!r} has no version {number}",
            {"pipeline": pipeline.name, "version": number},
        )
    return row


def get_run(session: Session, run_id: str) -> Run:
    """The run with this id, or with this id prefix (the CLI shows the first 8 characters)."""
    run = session.get(Run, run_id) if len(run_id) <= 36 else None
    if run is None and _ID_PREFIX.fullmatch(run_id):
        run = _run_by_prefix(session, run_id)
    if run is None:
        raise RunNotFound(f"run {run_id!r} not found", {"run_id": run_id})
    return run


def _run_by_prefix(session: Session, prefix: str) -> Run | None:
    ids = session.scalars(select(Run.id).where(Run.id.like(f"{prefix}%")).order_by(Run.id).limit(6)).all()
    if len(ids) > 1:
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise AmbiguousRunId(
            f"run id {prefix!r} matches several runs ({shown}); give more of the id",
            {"run_id": prefix, "matches": list(ids[:5])},
        )
    return session.get(Run, ids[0]) if ids else None
