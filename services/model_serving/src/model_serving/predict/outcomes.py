"""Outcomes of served predictions, by the prediction's request id: metric values go to the A/B
experiment that routed the request (as events of that user and variant), labels to model
monitoring (joined to the logged prediction)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from mlops_client import MlopsError, MonitoringClient, ServerError, ServiceUnavailableError
from starlette.concurrency import run_in_threadpool

from model_serving.deps import DeploymentPath
from model_serving.errors import EventsRefused, LabelsRefused, PeerUnavailable
from model_serving.predict.schemas import OutcomeBatch, OutcomeIn, OutcomesAccepted
from model_serving.predict.service import Predictor

router = APIRouter(tags=["predictions"])


def _events(predictor: Predictor, outcomes: list[OutcomeIn]) -> tuple[list[dict[str, Any]], list[str]]:
    events: list[dict[str, Any]] = []
    unknown: list[str] = []
    for o in outcomes:
        if o.metric is None:
            continue
        origin = predictor.origins.get(o.request_id)
        if origin is None:
            unknown.append(o.request_id)
            continue
        event: dict[str, Any] = {
            "experiment": origin.experiment,
            "user_id": o.user_id or origin.user_id,
            "metric": o.metric,
            "event_id": f"{o.request_id}:{o.metric}"[:128],
        }
        if o.value is not None:
            event["value"] = o.value
        if origin.variant is not None:
            event["variant"] = origin.variant
        events.append(event)
    return events, unknown


def _send(
    ab: httpx.Client | None,
    monitoring: MonitoringClient | None,
    model: str,
    events: list[dict[str, Any]],
    labels: dict[str, Any],
) -> int:
    if events:
        if ab is None:
            raise PeerUnavailable("no A/B testing service is configured")
        try:
            response = ab.post("/api/events", json={"events": events})
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"A/B testing did not answer: {exc!r}") from None
        if response.status_code >= 500:
            raise PeerUnavailable(f"A/B testing answered {response.status_code}")
        if response.status_code >= 400:
            raise EventsRefused(f"A/B testing refused the events: {response.text[:500]}")
    if not labels:
        return 0
    if monitoring is None:
        raise PeerUnavailable("no model registry is configured for labels")
    monitoring.flush(timeout=5.0)  # the predictions are logged before their labels join them
    try:
        return monitoring.log_labels(model, labels).labelled
    except (ServiceUnavailableError, ServerError) as exc:
        raise PeerUnavailable(f"the model registry did not take the labels: {exc}") from None
    except MlopsError as exc:  # a 4xx: the registry refused them (no such model, a bad label)
        raise LabelsRefused(f"the model registry refused the labels: {exc}", {"registry": str(exc)}) from None


@router.post(
    "/api/deployments/{name}/outcomes",
    response_model=OutcomesAccepted,
    summary="Outcomes of predictions by request id: A/B metric values and/or true labels",
)
async def post_outcomes(name: DeploymentPath, body: OutcomeBatch, request: Request) -> OutcomesAccepted:
    from model_serving.predict.router import _live

    live = _live(request, name)
    predictor: Predictor = request.app.state.predictor
    events, unknown = _events(predictor, body.outcomes)
    labels = {o.request_id: o.label for o in body.outcomes if o.label is not None}
    state = request.app.state
    labelled = await run_in_threadpool(
        _send, state.ab_http, predictor.monitoring, live.spec.model, events, labels
    )
    return OutcomesAccepted(events=len(events), labels=labelled, unknown=unknown[:100])
