from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from mlops_kit.bounds import NUL_FREE, BoundedDatetime, MapKey
from mlops_kit.deps import SessionDep
from mlops_kit.errors import PayloadTooLarge
from mlops_kit.limits import upload_limit
from mlops_kit.openapi import BINARY, inline_schema, json_body
from pydantic import BaseModel, Field, RootModel
from sqlalchemy.orm import Session

from model_registry.deps import (
    ActorDep,
    ModelDep,
    NamePath,
    VersionDep,
    VersionPath,
    find_version,
    resolve_version,
)
from model_registry.errors import InvalidReferenceData
from model_registry.models import service as models
from model_registry.monitoring import ingest, service
from model_registry.monitoring.profile import Profile
from model_registry.monitoring.schemas import (
    DriftRead,
    LabelBatch,
    LabelRows,
    LabelsAccepted,
    PerformanceRead,
    PredictionBatch,
    PredictionRows,
    PredictionsAccepted,
    ReferenceRead,
    ReferenceSummary,
    Scalar,
)
from model_registry.tables import ModelVersion

router = APIRouter(prefix="/api/models/{name}", tags=["monitoring"])
CSV = "text/csv"


# ---- reference profile ------------------------------------------------------------------------

Record = Annotated[dict[MapKey, Scalar | None], Field(max_length=ingest.MAX_COLUMNS)]
ReferenceRows = Annotated[list[Record], Field(min_length=1, max_length=1_000_000)]


class ReferenceBody(BaseModel):
    rows: ReferenceRows
    types: Annotated[dict[MapKey, Literal["numeric", "categorical", "boolean"]], Field(max_length=1000)] = {}


class ReferenceJson(RootModel[ReferenceRows | ReferenceBody]):
    """Documentation of the JSON body (the route parses it itself, streamed and bounded)."""


TypesQuery = Annotated[
    list[Annotated[str, Field(max_length=300, pattern=NUL_FREE)]],
    Query(max_length=1000, description="CSV column types as column:kind (numeric, categorical, boolean)"),
]


async def _read(request: Request) -> bytes:
    limit = upload_limit(request)
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes", {"max_bytes": limit})
        parts.append(chunk)
    return b"".join(parts)


def _find(request: Request, name: str, version: str) -> None:
    """404 before any byte is read, using a read-only session (no lock held during the upload)."""
    session = request.app.state.db.session(write=False)
    try:
        resolve_version(session, name, version)
    finally:
        session.close()


def _profile(raw: bytes, content_type: str, types: list[str]) -> tuple[Profile, int]:
    if content_type == CSV:
        columns, kinds = ingest.parse_csv(raw, ingest.parse_types(types))
    elif content_type in ("application/json", ""):
        if types:
            raise InvalidReferenceData('JSON bodies declare types in {"rows": [...], "types": {...}}')
        columns, kinds = ingest.parse_json(raw)
    else:
        raise InvalidReferenceData(
            f"content type {content_type!r} is not supported; send application/json or text/csv",
            {"content_type": content_type[:100]},
        )
    return ingest.build(columns, kinds)


def _store(
    session: Session, name: str, version: str, profile: Profile, rows: int, who: str
) -> ReferenceSummary:
    models.lock_model(session, name)
    model, found = resolve_version(session, name, version)
    return service.put_reference(session, model, found, profile, rows, who)


@router.put(
    "/versions/{version}/monitoring/reference",
    response_model=ReferenceSummary,
    openapi_extra=json_body(inline_schema(ReferenceJson), **{CSV: {"schema": BINARY}}),
    summary="Store the version's reference profile, built from JSON records or CSV (replaces any)",
)
async def put_reference(
    name: NamePath,
    version: VersionPath,
    request: Request,
    session: SessionDep,
    who: ActorDep,
    types: TypesQuery = [],
) -> ReferenceSummary:
    await run_in_threadpool(_find, request, name, version)
    raw = await _read(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    profile, rows = await run_in_threadpool(_profile, raw, content_type, types)
    return await run_in_threadpool(_store, session, name, version, profile, rows, who)


@router.get(
    "/versions/{version}/monitoring/reference",
    response_model=ReferenceRead,
    summary="The version's stored reference profile",
)
def get_reference(model: ModelDep, version: VersionDep, session: SessionDep) -> ReferenceRead:
    return service.read_reference(session, model, version)


# ---- prediction and label logs ----------------------------------------------------------------


@router.post("/predictions", response_model=PredictionsAccepted, summary="Log up to 10,000 predictions")
def log_predictions(
    model: ModelDep,
    session: SessionDep,
    body: Annotated[PredictionRows | PredictionBatch, Body(description="rows, or {predictions: rows}")],
) -> PredictionsAccepted:
    rows = body.predictions if isinstance(body, PredictionBatch) else body
    return service.log_predictions(session, model, rows)


@router.post(
    "/labels", response_model=LabelsAccepted, summary="Join up to 10,000 labels to their predictions"
)
def log_labels(
    model: ModelDep,
    session: SessionDep,
    body: Annotated[LabelRows | LabelBatch, Body(description="rows, or {labels: rows}")],
) -> LabelsAccepted:
    rows = body.labels if isinstance(body, LabelBatch) else body
    return service.log_labels(session, model, rows)


# ---- drift and performance --------------------------------------------------------------------

VersionQuery = Annotated[
    str | None,
    Query(
        max_length=65, description="version, 'latest' or '@alias'; default: of the latest logged prediction"
    ),
]
StartQuery = Annotated[BoundedDatetime | None, Query(description="window start (inclusive)")]
EndQuery = Annotated[BoundedDatetime | None, Query(description="window end (exclusive)")]
LastQuery = Annotated[
    str | None, Query(max_length=16, description="window length before end (or now): 30m, 1h, 7d, 2w")
]
LastNQuery = Annotated[
    int | None, Query(ge=1, le=service.MAX_WINDOW, description="only the most recent n predictions")
]


@dataclass
class Window:
    """The logged predictions a drift or performance answer reads: the version (resolved), the
    time bounds and at most `last_n` of them (the query parameters both routes take)."""

    version: ModelVersion
    bounds: tuple[datetime | None, datetime | None]
    last_n: int | None


def _window(
    model: ModelDep,
    session: SessionDep,
    version: VersionQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
    last: LastQuery = None,
    last_n: LastNQuery = None,
) -> Window:
    bounds = service.window_bounds(start, end, last)
    found = find_version(session, model, service.pick_version(session, model, version))
    return Window(found, bounds, last_n)


WindowDep = Annotated[Window, Depends(_window)]


@router.get("/monitoring/drift", response_model=DriftRead, summary="Drift of a window of logged predictions")
def get_drift(model: ModelDep, session: SessionDep, window: WindowDep) -> DriftRead:
    return service.drift_report(session, model, window.version, window.bounds, window.last_n)


@router.get(
    "/monitoring/performance",
    response_model=PerformanceRead,
    summary="Performance of the labelled predictions of a window, beside the registered metrics",
)
def get_performance(model: ModelDep, session: SessionDep, window: WindowDep) -> PerformanceRead:
    return service.performance_report(session, model, window.version, window.bounds, window.last_n)
