"""`/api/route` (one user) and `/api/route/batch`; `/api/events` ingestion."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from mlops_kit.deps import READ_ONLY, run_transaction
from mlops_kit.errors import BadRequest
from mlops_kit.openapi import answers, inline_schema
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ab_testing.api.answers import Assignment, AssignmentBatch, EventsAccepted, ExposuresAccepted
from ab_testing.events import EventIn, ingest
from ab_testing.routing import assignment_json

router = APIRouter(tags=["routing"])


def _expose(request: Request, definition: dict[str, Any], answer: dict[str, Any]) -> bool:
    return bool(request.app.state.exposures.expose(definition, answer))


@router.get("/api/route", response_model=None, responses=answers(Assignment))
async def route(
    request: Request,
    user_id: str = Query(min_length=1, max_length=200),
    experiment: str = Query(min_length=1, max_length=100),
) -> dict[str, Any]:
    """The user's variant and its model version: deterministic and stateless (FNV-1a hash v2)."""
    cached = await request.app.state.definitions.entry(experiment)
    answer = assignment_json(cached.definition, user_id, cached.compiled)
    _expose(request, cached.definition, answer)
    return answer


class RouteBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(min_length=1, max_length=100)
    user_ids: list[str] = Field(min_length=1)


@router.post(
    "/api/route/batch", openapi_extra=READ_ONLY, response_model=None, responses=answers(AssignmentBatch)
)
async def route_batch(body: RouteBatch, request: Request) -> dict[str, Any]:
    limit = request.app.state.settings.max_route_batch
    if len(body.user_ids) > limit:
        raise BadRequest(f"at most {limit} users per batch", {"limit": limit}, code="BATCH_TOO_LARGE")
    cached = await request.app.state.definitions.entry(body.experiment)
    answers = []
    for user_id in body.user_ids:
        answer = assignment_json(cached.definition, user_id, cached.compiled)
        _expose(request, cached.definition, answer)
        answers.append(answer)
    return {"assignments": answers}


class ExposureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(min_length=1, max_length=100)
    user_id: str = Field(min_length=1, max_length=200)


class ExposureBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exposures: list[ExposureIn] = Field(min_length=1, max_length=100_000)


@router.post(
    "/api/exposures", status_code=202, response_model=None, responses=answers(ExposuresAccepted, 202)
)
async def post_exposures(body: ExposureBatch, request: Request) -> dict[str, Any]:
    """Assignments a client made itself (local evaluation), to be counted like routed ones: the
    service recomputes each user's variant from the definition, so a client cannot skew them."""
    counted = 0
    for exposure in body.exposures:
        cached = await request.app.state.definitions.entry(exposure.experiment)
        answer = assignment_json(cached.definition, exposure.user_id, cached.compiled)
        counted += _expose(request, cached.definition, answer)
    return {"accepted": counted, "ignored": len(body.exposures) - counted}


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)


_EVENTS = TypeAdapter(list[EventIn])
_ONE_OR_MANY = {"oneOf": [inline_schema(EventIn), inline_schema(EventBatch)]}
_EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _ONE_OR_MANY}}}}


@router.post(
    "/api/events",
    tags=["events"],
    openapi_extra=_EVENTS_BODY,
    response_model=None,
    responses=answers(EventsAccepted),
)
async def post_events(request: Request) -> dict[str, Any]:
    """Outcome events, all or nothing; idempotent on `event_id`. Without `variant`, an event counts
    for the variant the user is assigned to (users outside the experiment are not counted).
    Parsed with orjson and validated in one pass: this is the ingestion hot path."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="INVALID_JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is one event or {'events': [...]}", code="INVALID_BODY")
    try:
        if "events" in body:
            if set(body) != {"events"} or not isinstance(body["events"], list) or not body["events"]:
                raise BadRequest("'events' must be a non-empty list (and the only key)", code="INVALID_BODY")
            events = _EVENTS.validate_python(body["events"])
        else:
            events = [EventIn.model_validate(body)]
    except ValidationError as exc:
        loc_prefix = ("events",) if "events" in body else ()
        errors = [{**e, "loc": ("body", *loc_prefix, *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    limit = request.app.state.settings.max_events_per_request
    if len(events) > limit:
        raise BadRequest(f"at most {limit} events per request", {"limit": limit}, code="BATCH_TOO_LARGE")
    shards = request.app.state.settings.fold_shards
    return await run_transaction(request, lambda session: ingest(session, events, shards))
