"""`/api/pipelines`: definitions and their versions, runs of a pipeline, schedules, backfills, webhooks."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from mlops_kit.bounds import INT64_SCHEMA_MAX, BoundedDatetime, JsonObject, PathStr
from mlops_kit.bounds import NulFreeStr as Text
from mlops_kit.db import count_rows
from mlops_kit.deps import SessionDep
from mlops_kit.openapi import answers
from mlops_kit.pagination import Limit, Offset, page_fields
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from sqlalchemy import delete, func, select

from pipeline_orchestrator.api.answers import (
    BackfillRead,
    PipelineCreated,
    PipelinePage,
    PipelineRead,
    RunRead,
    ScheduleRead,
    VersionPage,
    VersionRead,
    WebhookPage,
    WebhookRead,
)
from pipeline_orchestrator.api.common import get_pipeline, get_version, wake_after_commit
from pipeline_orchestrator.api.serialize import pipeline_json, run_json, schedule_json, version_json
from pipeline_orchestrator.engine.cron import (
    MAX_CATCHUP,
    check_cron,
    day_bounds,
    fires_between,
    next_fire,
    zone,
)
from pipeline_orchestrator.engine.state import create_run, hash_token, utcnow
from pipeline_orchestrator.errors import (
    BackfillTooLarge,
    CronRequired,
    InvalidRange,
    PipelineDefinitionError,
    PipelineHasActiveRuns,
)
from pipeline_orchestrator.locks import lock_key
from pipeline_orchestrator.spec import (
    PipelineSpec,
    check_known_parameters,
    resolve_parameters,
    validate_pipeline,
)
from pipeline_orchestrator.tables import Pipeline, PipelineVersion, Run, RunState, Schedule, Webhook

router = APIRouter(tags=["pipelines"])
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_definition(body: dict[str, Any]) -> PipelineSpec:
    try:
        spec = PipelineSpec.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"loc": _loc(body, err["loc"]), "msg": err["msg"].removeprefix("Value error, ")}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = errors[0]
        raise PipelineDefinitionError(f"{first['loc']}: {first['msg']}", {"errors": errors}) from None
    validate_pipeline(spec)
    return spec


def _loc(body: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """tasks.2.command -> tasks[2](train).command: the task's name where there is one."""
    parts: list[str] = []
    node: Any = body
    for item in loc:
        if isinstance(item, int):
            name = (
                node[item].get("name")
                if isinstance(node, list) and item < len(node) and isinstance(node[item], dict)
                else None
            )
            parts[-1] = f"{parts[-1]}[{item}]" + (f"({name})" if name else "") if parts else f"[{item}]"
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)


@router.post(
    "/api/pipelines",
    status_code=201,
    response_model=None,
    responses={**answers(PipelineCreated, 201), **answers(PipelineCreated, 200, "Unchanged")},
)
def create_pipeline(
    session: SessionDep,
    body: Annotated[
        JsonObject,
        Body(description="a pipeline definition (see API.md); strings up to 65,536"),
    ],
) -> Response:
    """Create a pipeline, or the next version of an existing one when the definition changed."""
    spec = parse_definition(body)
    definition = spec.model_dump(mode="json")
    digest = spec.content_hash()
    now = utcnow()
    lock_key(session, "pipeline", spec.name)  # the next version number is read, then written
    pipeline = session.scalar(select(Pipeline).where(Pipeline.name == spec.name))
    created = True
    if pipeline is None:
        pipeline = Pipeline(
            id=str(uuid.uuid4()),
            name=spec.name,
            description=spec.description,
            latest_version=1,
            max_active_runs=spec.max_active_runs,
            tags=spec.tags,
            created_at=now,
            updated_at=now,
        )
        session.add(pipeline)
        session.flush()
        version = PipelineVersion(
            pipeline_id=pipeline.id, version=1, definition=definition, content_hash=digest, created_at=now
        )
        session.add(version)
    else:
        version = get_version(session, pipeline)
        if version.content_hash == digest:
            created = False
        else:
            pipeline.latest_version += 1
            pipeline.description = spec.description
            pipeline.max_active_runs = spec.max_active_runs
            pipeline.tags = spec.tags
            pipeline.updated_at = now
            version = PipelineVersion(
                pipeline_id=pipeline.id,
                version=pipeline.latest_version,
                definition=definition,
                content_hash=digest,
                created_at=now,
            )
            session.add(version)
    session.flush()
    out = pipeline_json(pipeline, version) | {"created": created}
    return JSONResponse(out, status_code=201 if created else 200)


@router.get("/api/pipelines", response_model=None, responses=answers(PipelinePage))
def list_pipelines(
    session: SessionDep,
    name_prefix: str | None = Query(default=None, max_length=100),
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    query = select(Pipeline)
    if name_prefix:
        query = query.where(Pipeline.name.startswith(name_prefix, autoescape=True))
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(Pipeline.name).limit(limit).offset(offset)).all()
    return {"items": [pipeline_json(p) for p in rows], **page_fields(total, limit, offset)}


@router.get("/api/pipelines/{pipeline}", response_model=None, responses=answers(PipelineRead))
def read_pipeline(pipeline: PathStr, session: SessionDep) -> dict[str, Any]:
    p = get_pipeline(session, pipeline)
    return pipeline_json(p, get_version(session, p))


@router.get("/api/pipelines/{pipeline}/versions", response_model=None, responses=answers(VersionPage))
def list_versions(
    pipeline: PathStr, session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    p = get_pipeline(session, pipeline)
    query = select(PipelineVersion).where(PipelineVersion.pipeline_id == p.id)
    total = count_rows(session, query)
    rows = session.scalars(query.order_by(PipelineVersion.version.desc()).limit(limit).offset(offset)).all()
    return {"items": [version_json(v) for v in rows], **page_fields(total, limit, offset)}


@router.get(
    "/api/pipelines/{pipeline}/versions/{version}", response_model=None, responses=answers(VersionRead)
)
def read_version(
    pipeline: PathStr, version: Annotated[int, Path(ge=1, le=INT64_SCHEMA_MAX)], session: SessionDep
) -> dict[str, Any]:
    p = get_pipeline(session, pipeline)
    return version_json(get_version(session, p, version))


@router.delete("/api/pipelines/{pipeline}", status_code=204)
def delete_pipeline(pipeline: PathStr, session: SessionDep) -> Response:
    p = get_pipeline(session, pipeline)
    active = session.scalar(
        select(func.count()).where(Run.pipeline_id == p.id, Run.state.in_(RunState.ACTIVE))
    )
    if active:
        raise PipelineHasActiveRuns(
            f"pipeline {p.name!r} has {active} active run(s); cancel them first",
            {"pipeline": p.name, "active_runs": active},
        )
    # children first: SQLite does not enforce ON DELETE CASCADE unless asked to
    from pipeline_orchestrator.tables import AlertRoute, Attempt, TaskCache, TaskInstance

    run_ids = select(Run.id).where(Run.pipeline_id == p.id)
    # its runs' cache entries go with them: a hit would hand out outputs (and artifacts) of a
    # run that no longer exists, to another pipeline with the same task
    session.execute(delete(TaskCache).where(TaskCache.run_id.in_(run_ids)))
    session.execute(delete(Attempt).where(Attempt.run_id.in_(run_ids)))
    session.execute(delete(TaskInstance).where(TaskInstance.run_id.in_(run_ids)))
    session.execute(delete(Run).where(Run.pipeline_id == p.id))
    for table in (Schedule, Webhook, AlertRoute, PipelineVersion):
        session.execute(delete(table).where(table.pipeline_id == p.id))
    session.delete(p)
    return Response(status_code=204)


# runs of a pipeline --------------------------------------------------------------------------


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: JsonObject = Field(default_factory=dict)
    version: int | None = Field(
        default=None, ge=1, le=INT64_SCHEMA_MAX, description="default: the latest version"
    )


@router.post(
    "/api/pipelines/{pipeline}/runs",
    status_code=201,
    tags=["runs"],
    response_model=None,
    responses=answers(RunRead, 201),
)
def trigger_run(
    pipeline: PathStr, request: Request, session: SessionDep, body: RunCreate | None = None
) -> dict[str, Any]:
    body = body or RunCreate()
    p = get_pipeline(session, pipeline)
    version = get_version(session, p, body.version)
    run = create_run(session, p, version.definition, version.version, body.parameters, trigger="manual")
    session.flush()
    wake_after_commit(request, session, [run.id])
    return run_json(run)


# schedules -----------------------------------------------------------------------------------


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: Text = Field(min_length=1, max_length=120)
    timezone: Text = Field(default="UTC", max_length=64)
    parameters: JsonObject = Field(default_factory=dict)
    catchup: bool = False
    enabled: bool = True


@router.post(
    "/api/pipelines/{pipeline}/schedules",
    status_code=201,
    tags=["schedules"],
    response_model=None,
    responses=answers(ScheduleRead, 201),
)
def create_schedule(
    pipeline: PathStr, body: ScheduleCreate, request: Request, session: SessionDep
) -> dict[str, Any]:
    p = get_pipeline(session, pipeline)
    cron = check_cron(body.cron)
    zone(body.timezone)
    spec = PipelineSpec.model_validate(get_version(session, p).definition)
    resolve_parameters(spec, body.parameters)
    now = utcnow()
    schedule = Schedule(
        id=str(uuid.uuid4()),
        pipeline_id=p.id,
        cron=cron,
        timezone=body.timezone,
        parameters=body.parameters,
        catchup=body.catchup,
        enabled=body.enabled,
        next_run_at=next_fire(cron, body.timezone, now),
        created_at=now,
    )
    session.add(schedule)
    session.flush()
    return schedule_json(schedule, p.name)


# backfill ------------------------------------------------------------------------------------


class BackfillCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: BoundedDatetime = Field(
        description="first logical date; a bare date (2026-11-01) is that day's start in the cron's "
        "timezone, a time without an offset is UTC"
    )
    end: BoundedDatetime = Field(
        description="last logical date, included; a bare date (2026-11-07) includes that whole day"
    )
    cron: Text | None = Field(
        default=None, max_length=120, description="default: the pipeline's first schedule's"
    )
    timezone: Text | None = Field(default=None, max_length=64)
    parameters: JsonObject = Field(default_factory=dict)
    _days: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="wrap")
    @classmethod
    def _note_bare_dates(
        cls, data: Any, handler: ModelWrapValidatorHandler[BackfillCreate]
    ) -> BackfillCreate:
        model = handler(data)
        if isinstance(data, dict):
            bare = {k for k in ("start", "end") if isinstance(data.get(k), str) and _DAY.fullmatch(data[k])}
            model._days = frozenset(bare)
        return model

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end] in UTC: bare dates are whole days in ``tz``."""
        first, last = day_bounds(self.start.date(), self.end.date(), tz)
        start = first if "start" in self._days else _utc(self.start)
        end = last if "end" in self._days else _utc(self.end)
        return start, end


@router.post(
    "/api/pipelines/{pipeline}/backfill",
    status_code=201,
    tags=["schedules"],
    response_model=None,
    responses=answers(BackfillRead, 201),
)
def backfill(
    pipeline: PathStr, body: BackfillCreate, request: Request, session: SessionDep
) -> dict[str, Any]:
    """A run per cron fire time from start to end, both included (a bare end date includes its
    whole day, as in Airflow), each with its logical date (and the parameters ``logical_date``
    and ``ds`` when the pipeline declares them)."""
    p = get_pipeline(session, pipeline)
    cron, tz = body.cron, body.timezone
    if cron is None:
        first = session.scalar(
            select(Schedule).where(Schedule.pipeline_id == p.id).order_by(Schedule.created_at)
        )
        if first is None:
            raise CronRequired(f"pipeline {p.name!r} has no schedule: give a 'cron' for the backfill")
        cron, tz = first.cron, tz or first.timezone
    cron = check_cron(cron)
    tz = tz or "UTC"
    try:
        start, end = body.bounds(tz)
    except (OverflowError, ValueError):  # a day past year 9999 (or before 1) in that timezone
        raise InvalidRange(
            "'start' and 'end' must fall within years 1 to 9999 in the schedule's timezone",
            {"start": body.start.isoformat(), "end": body.end.isoformat(), "timezone": tz},
        ) from None
    if end < start:
        raise InvalidRange(
            "'end' is before 'start'",
            {"start": body.start.isoformat(), "end": body.end.isoformat()},
        )
    fires = fires_between(cron, tz, start, end, limit=MAX_CATCHUP + 1)
    if len(fires) > MAX_CATCHUP:
        raise BackfillTooLarge(
            f"the range holds more than {MAX_CATCHUP} fire times; backfill it in parts",
            {"limit": MAX_CATCHUP},
        )
    version = get_version(session, p)
    runs = []
    for fire in fires:
        runs.append(
            create_run(
                session,
                p,
                version.definition,
                version.version,
                body.parameters,
                trigger="backfill",
                trigger_info={"cron": cron, "timezone": tz},
                logical_date=fire,
                timezone=tz,
            )
        )
    session.flush()
    wake_after_commit(request, session, [r.id for r in runs])
    return {"runs": [run_json(r) for r in runs], "count": len(runs)}


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# webhooks ------------------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: JsonObject = Field(default_factory=dict, description="defaults; the caller's win")


def webhook_json(w: Webhook, pipeline_name: str, token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": w.id,
        "pipeline_id": w.pipeline_id,
        "pipeline": pipeline_name,
        "parameters": w.parameters or {},
        "created_at": w.created_at.isoformat() if w.created_at else None,
    }
    if token:
        out["token"] = token
        out["url"] = f"/api/triggers/webhooks/{token}"
    return out


@router.post(
    "/api/pipelines/{pipeline}/webhooks",
    status_code=201,
    tags=["triggers"],
    response_model=None,
    responses=answers(WebhookRead, 201),
)
def create_webhook(
    pipeline: PathStr, session: SessionDep, body: WebhookCreate | None = None
) -> dict[str, Any]:
    """A secret URL that starts this pipeline; the token is shown once (stored hashed)."""
    body = body or WebhookCreate()
    p = get_pipeline(session, pipeline)
    spec = PipelineSpec.model_validate(get_version(session, p).definition)
    check_known_parameters(spec, body.parameters)
    token = secrets.token_urlsafe(32)
    hook = Webhook(
        id=str(uuid.uuid4()),
        pipeline_id=p.id,
        token_hash=hash_token(token),
        parameters=body.parameters,
        created_at=utcnow(),
    )
    session.add(hook)
    session.flush()
    return webhook_json(hook, p.name, token)


@router.get(
    "/api/pipelines/{pipeline}/webhooks",
    tags=["triggers"],
    response_model=None,
    responses=answers(WebhookPage),
)
def list_webhooks(pipeline: PathStr, session: SessionDep) -> dict[str, Any]:
    p = get_pipeline(session, pipeline)
    hooks = session.scalars(
        select(Webhook).where(Webhook.pipeline_id == p.id).order_by(Webhook.created_at)
    ).all()
    return {
        "items": [webhook_json(h, p.name) for h in hooks],
        **page_fields(len(hooks), max(1, len(hooks)), 0),
    }
