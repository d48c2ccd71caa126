"""Materialization: `POST /api/feature-sets/{name}/materialize` starts a background job copying
the newest offline rows of an event-time range into the online store; `GET
/api/materialization-jobs/{id}` and `GET /api/materialization-jobs` report progress."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from mlops_kit.bounds import INT64_SCHEMA_MAX, EpochSeconds, PathStr
from mlops_kit.deps import SessionDep, run_transaction
from mlops_kit.pagination import Limit, Offset, page_fields
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from feature_store.api.schemas import JobPage, JobRead
from feature_store.deps import JobRunnerDep, OnlineDep, ViewsDep
from feature_store.errors import InvalidRequest
from feature_store.offline import materialize
from feature_store.types import InvalidValue, to_micros

router = APIRouter(tags=["materialization"])


# ISO 8601 or epoch seconds, years 1-9999 (checked by to_micros)
TimeIn = Annotated[str, Field(max_length=64)] | EpochSeconds


class MaterializeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: TimeIn | None = Field(
        default=None, description="event-time start, inclusive (ISO 8601, naive = UTC, or epoch seconds)"
    )
    end: TimeIn | None = Field(default=None, description="event-time end, inclusive (default: now)")
    incremental: bool = Field(
        default=False,
        description="copy what the last jobs did not: rows with an event time after the feature set's "
        "watermark, and rows ingested since, whatever their event time",
    )

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if value is not None:
            try:
                to_micros(value)
            except InvalidValue as exc:
                raise ValueError(str(exc)) from None
        return value


@router.post("/api/feature-sets/{name}/materialize", status_code=202, response_model=JobRead)
async def materialize_feature_set(
    name: PathStr,
    request: Request,
    views: ViewsDep,
    online: OnlineDep,
    jobs: JobRunnerDep,
    body: MaterializeRequest | None = None,
) -> dict[str, Any]:
    """Start a job; answers the job resource (poll `GET /api/materialization-jobs/{id}`)."""
    body = body or MaterializeRequest()
    if body.incremental and body.start is not None:
        raise InvalidRequest("give start or incremental, not both")
    end_us = to_micros(body.end) if body.end is not None else time.time_ns() // 1000
    start_us = to_micros(body.start) if body.start is not None else None

    def work(session: Session) -> tuple[Any, dict[str, Any]]:
        view = views.get(session, name)
        job = materialize.create_job(session, view, start_us, end_us, body.incremental)
        return view, materialize.job_read(job, view.name)

    view, job = await run_transaction(request, work)
    jobs.start(online, job["id"], view)
    return job


@router.get("/api/materialization-jobs/{job_id}", response_model=JobRead)
def get_materialization_job(
    job_id: Annotated[int, Path(ge=1, le=INT64_SCHEMA_MAX)], session: SessionDep
) -> dict[str, Any]:
    """`{"id", "feature_set", "status", "start", "end", "incremental", "rows_total", "rows_done",
    "percent", "error", "created_at", "started_at", "finished_at"}`; rows are entities."""
    return materialize.get_job(session, job_id)


@router.get("/api/materialization-jobs", response_model=JobPage)
def list_materialization_jobs(
    session: SessionDep,
    feature_set: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"] | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Newest first."""
    items, total = materialize.list_jobs(session, feature_set, status, limit, offset)
    return {"items": items, **page_fields(total, limit, offset)}
