"""Pipelines: definitions and their versions, and what is created under a pipeline (manual runs,
schedules, backfills, webhooks). Framework-free; raises the errors of errors.py."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from pipeline_orchestrator.api.serialize import (
    pipeline_json,
    run_json,
    schedule_json,
    version_json,
    webhook_json,
)
from pipeline_orchestrator.engine.cron import MAX_CATCHUP, check_cron, fires_between, next_fire, zone
from pipeline_orchestrator.engine.state import create_run, hash_token, utcnow
from pipeline_orchestrator.errors import (
    BackfillTooLarge,
    CronRequired,
    InvalidRange,
    PipelineDefinitionError,
    PipelineHasActiveRuns,
    PipelineNotFound,
    PipelineVersionNotFound,
)
from pipeline_orchestrator.pipelines import repository
from pipeline_orchestrator.pipelines.schemas import (
    BackfillCreate,
    BackfillRead,
    PipelineCreated,
    PipelineRead,
    PipelineVersionRead,
    ScheduleCreate,
    ScheduleRead,
    WebhookCreate,
    WebhookRead,
)
from pipeline_orchestrator.runs.schemas import RunCreate, RunRead
from pipeline_orchestrator.spec import (
    PipelineSpec,
    check_known_parameters,
    resolve_parameters,
    validate_pipeline,
)
from pipeline_orchestrator.tables import Pipeline, PipelineVersion, Run, Schedule, Webhook


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def load_pipeline(session: Session, ref: str) -> Pipeline:
    """The pipeline with this name (or id)."""
    pipeline = repository.find(session, ref, by_id=_is_uuid(ref))
    if pipeline is None:
        raise PipelineNotFound(f"pipeline {ref!r} not found", {"pipeline": ref})
    return pipeline


def load_version(session: Session, pipeline: Pipeline, version: int | None = None) -> PipelineVersion:
    """The pipeline's version ``version`` (default: its latest)."""
    number = version or pipeline.latest_version
    row = repository.find_version(session, pipeline.id, number)
    if row is None:
        raise PipelineVersionNotFound(
            f"pipeline {pipeline.name!r} has no version {number}",
            {"pipeline": pipeline.name, "version": number},
        )
    return row


# definitions and versions ---------------------------------------------------------------------


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


def create_pipeline(session: Session, body: dict[str, Any]) -> PipelineCreated:
    """The pipeline, or its next version when the definition changed (`created` false: unchanged)."""
    spec = parse_definition(body)
    definition = spec.model_dump(mode="json")
    digest = spec.content_hash()
    now = utcnow()
    repository.lock_name(session, spec.name)
    pipeline = repository.find_by_name(session, spec.name)
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
        repository.add(session, pipeline)
        version = PipelineVersion(
            pipeline_id=pipeline.id, version=1, definition=definition, content_hash=digest, created_at=now
        )
        repository.add(session, version)
    else:
        version = load_version(session, pipeline)
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
            repository.add(session, version)
    return PipelineCreated.model_validate(pipeline_json(pipeline, version) | {"created": created})


def list_pipelines(
    session: Session, name_prefix: str | None, limit: int, offset: int
) -> tuple[list[PipelineRead], int]:
    rows, total = repository.page(session, name_prefix, limit, offset)
    return [PipelineRead.model_validate(pipeline_json(p)) for p in rows], total


def read_pipeline(session: Session, pipeline: Pipeline) -> PipelineRead:
    return PipelineRead.model_validate(pipeline_json(pipeline, load_version(session, pipeline)))


def list_versions(
    session: Session, pipeline: Pipeline, limit: int, offset: int
) -> tuple[list[PipelineVersionRead], int]:
    rows, total = repository.page_versions(session, pipeline.id, limit, offset)
    return [PipelineVersionRead.model_validate(version_json(v)) for v in rows], total


def read_version(session: Session, pipeline: Pipeline, version: int) -> PipelineVersionRead:
    return PipelineVersionRead.model_validate(version_json(load_version(session, pipeline, version)))


def delete_pipeline(session: Session, pipeline: Pipeline) -> None:
    """The pipeline with its versions, runs, schedules, webhooks and alert routes; refused while
    a run of it is active."""
    active = repository.count_active_runs(session, pipeline.id)
    if active:
        raise PipelineHasActiveRuns(
            f"pipeline {pipeline.name!r} has {active} active run(s); cancel them first",
            {"pipeline": pipeline.name, "active_runs": active},
        )
    repository.delete_pipeline(session, pipeline)


# what is created under a pipeline -------------------------------------------------------------


def trigger_run(session: Session, pipeline: Pipeline, body: RunCreate) -> Run:
    version = load_version(session, pipeline, body.version)
    run = create_run(
        session, pipeline, version.definition, version.version, body.parameters, trigger="manual"
    )
    repository.flush(session)
    return run


def create_schedule(session: Session, pipeline: Pipeline, body: ScheduleCreate) -> ScheduleRead:
    cron = check_cron(body.cron)
    zone(body.timezone)
    spec = PipelineSpec.model_validate(load_version(session, pipeline).definition)
    resolve_parameters(spec, body.parameters)
    now = utcnow()
    schedule = Schedule(
        id=str(uuid.uuid4()),
        pipeline_id=pipeline.id,
        cron=cron,
        timezone=body.timezone,
        parameters=body.parameters,
        catchup=body.catchup,
        enabled=body.enabled,
        next_run_at=next_fire(cron, body.timezone, now),
        created_at=now,
    )
    repository.add(session, schedule)
    return ScheduleRead.model_validate(schedule_json(schedule, pipeline.name))


def backfill(session: Session, pipeline: Pipeline, body: BackfillCreate) -> list[Run]:
    """A run per cron fire time from start to end, both included."""
    cron, tz = body.cron, body.timezone
    if cron is None:
        first = repository.first_schedule(session, pipeline.id)
        if first is None:
            raise CronRequired(f"pipeline {pipeline.name!r} has no schedule: give a 'cron' for the backfill")
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
    version = load_version(session, pipeline)
    runs = [
        create_run(
            session,
            pipeline,
            version.definition,
            version.version,
            body.parameters,
            trigger="backfill",
            trigger_info={"cron": cron, "timezone": tz},
            logical_date=fire,
            timezone=tz,
        )
        for fire in fires
    ]
    repository.flush(session)
    return runs


def backfill_read(runs: list[Run]) -> BackfillRead:
    return BackfillRead.model_validate({"runs": [run_json(r) for r in runs], "count": len(runs)})


def run_read(run: Run) -> RunRead:
    return RunRead.model_validate(run_json(run))


def create_webhook(session: Session, pipeline: Pipeline, body: WebhookCreate) -> WebhookRead:
    """A secret URL that starts this pipeline; the token is shown once (stored hashed)."""
    spec = PipelineSpec.model_validate(load_version(session, pipeline).definition)
    check_known_parameters(spec, body.parameters)
    token = secrets.token_urlsafe(32)
    hook = Webhook(
        id=str(uuid.uuid4()),
        pipeline_id=pipeline.id,
        token_hash=hash_token(token),
        parameters=body.parameters,
        created_at=utcnow(),
    )
    repository.add(session, hook)
    return WebhookRead.model_validate(webhook_json(hook, pipeline.name, token))


def list_webhooks(session: Session, pipeline: Pipeline) -> list[WebhookRead]:
    """All of the pipeline's webhooks (without their tokens), oldest first."""
    return [
        WebhookRead.model_validate(webhook_json(h, pipeline.name))
        for h in repository.webhooks(session, pipeline.id)
    ]
