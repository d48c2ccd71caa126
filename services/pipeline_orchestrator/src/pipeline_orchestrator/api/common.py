"""Lookups shared by the routers still under api/ (the triggers' and the workers')."""

from __future__ import annotations

import hmac

from fastapi import Request
from mlops_kit.auth import Principal, Role
from mlops_kit.deps import authenticate, authorize
from mlops_kit.errors import Unauthorized

from pipeline_orchestrator.deps import engine, wake_after_commit
from pipeline_orchestrator.pipelines.service import load_pipeline as get_pipeline
from pipeline_orchestrator.pipelines.service import load_version as get_version
from pipeline_orchestrator.runs.service import load_run as get_run

__all__ = [
    "authorize_alertmanager",
    "engine",
    "get_pipeline",
    "get_run",
    "get_version",
    "wake_after_commit",
]


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
