"""`/api/route` (one user) and `/api/route/batch`; `/api/events` ingestion."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from mlops_kit.deps import READ_ONLY, audit_alone, run_transaction
from mlops_kit.errors import parse_json
from mlops_kit.openapi import answers, inline_schema
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ab_testing.api.answers import Assignment, AssignmentBatch, EventsAccepted, ExposuresAccepted
from ab_testing.errors import BatchTooLarge, InvalidBody
from ab_testing.events import EventIn, ingest
from ab_testing.routing import assignment_json
from ab_testing.schemas import (
    MAX_EVENTS,
    MAX_EXPOSURES,
    MAX_ROUTE_BATCH,
    REF_MAX,
    USER_ID_MAX,
    ExperimentRef,
    UserId,
)

router = APIRouter(tags=["routing"])


def _expose(request: Request, definition: dict[str, Any], answer: dict[str, Any]) -> bool:
    return bool(request.app.state.exposures.expose(definition, answer))


def _caller(request: Request) -> tuple[str, str]:
    principal = getattr(request.state, "principal", None)
    return (principal.name, principal.role.name) if principal else ("anonymous", "none")


@router.get("/api/route", response_model=None, responses=answers(Assignment))
async def route(
    request: Request,
    user_id: str = Query(min_length=1, max_length=USER_ID_MAX),
    experiment: str = Query(min_length=1, max_length=REF_MAX),
) -> dict[str, Any]:
    """The user's variant and its model version: deterministic and stateless (FNV-1a hash v2).
    The exposure it records is audited per caller in the buffer's periodic write (one entry per
    caller and write, not per request: this is the hot path)."""
    cached = await request.app.state.definitions.entry(experiment)
    answer = assignment_json(cached.definition, user_id, cached.compiled)
    request.app.state.exposures.expose(cached.definition, answer, _caller(request))
    return answer


class RouteBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: ExperimentRef
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_ROUTE_BATCH)


@router.post(
    "/api/route/batch", openapi_extra=READ_ONLY, response_model=None, responses=answers(AssignmentBatch)
)
async def route_batch(body: RouteBatch, request: Request) -> dict[str, Any]:
    """Assign many users at once (a viewer may); their exposures are recorded, and the request
    writes one audit entry."""
    limit = request.app.state.settings.max_route_batch
    if len(body.user_ids) > limit:
        raise BatchTooLarge(f"at most {limit} users per batch", {"limit": limit})
    cached = await request.app.state.definitions.entry(body.experiment)
    answers, exposed = [], 0
    for user_id in body.user_ids:
        answer = assignment_json(cached.definition, user_id, cached.compiled)
        exposed += _expose(request, cached.definition, answer)
        answers.append(answer)
    details = {"experiment": body.experiment, "users": len(body.user_ids), "exposures": exposed}
    await audit_alone(request, details)
    return {"assignments": answers}


class ExposureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: ExperimentRef
    user_id: UserId


class ExposureBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exposures: list[ExposureIn] = Field(min_length=1, max_length=MAX_EXPOSURES)


@router.post(
    "/api/exposures", status_code=202, response_model=None, responses=answers(ExposuresAccepted, 202)
)
async def post_exposures(body: ExposureBatch, request: Request) -> dict[str, Any]:
    """Assignments a client made itself (local evaluation), to be counted like routed ones: the
    service recomputes each user's variant from the definition, so a client cannot skew them.
    One audit entry per request."""
    counted = 0
    for exposure in body.exposures:
        cached = await request.app.state.definitions.entry(exposure.experiment)
        answer = assignment_json(cached.definition, exposure.user_id, cached.compiled)
        counted += _expose(request, cached.definition, answer)
    details = {"exposures": len(body.exposures), "accepted": counted}
    await audit_alone(request, details)
    return {"accepted": counted, "ignored": len(body.exposures) - counted}


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


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
    body = parse_json(await request.body())
    if not isinstance(body, dict):
        raise InvalidBody("the body is one event or {'events': [...]}")
    try:
        if "events" in body:
            if set(body) != {"events"} or not isinstance(body["events"], list) or not body["events"]:
                raise InvalidBody("'events' must be a non-empty list (and the only key)")
            events = _EVENTS.validate_python(body["events"])
        else:
            events = [EventIn.model_validate(body)]
    except ValidationError as exc:
        loc_prefix = ("events",) if "events" in body else ()
        errors = [{**e, "loc": ("body", *loc_prefix, *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    limit = request.app.state.settings.max_events_per_request
    if len(events) > limit:
        raise BatchTooLarge(f"at most {limit} events per request", {"limit": limit})
    shards = request.app.state.settings.fold_shards
    return await run_transaction(request, lambda session: ingest(session, events, shards))
