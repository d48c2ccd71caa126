from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from mlops_kit.audit import utcnow
from mlops_kit.bounds import NUL_FREE, BoundedDatetime, MapKey
from mlops_kit.deps import SessionDep, run_transaction
from mlops_kit.errors import ErrorBody, json_error_responses
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
from model_registry.models import service as models
from model_registry.monitoring import alert_service, ingest, logparse, reference_data, service
from model_registry.monitoring.html_report import POLICY
from model_registry.monitoring.logparse import LoggedBatch
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
from model_registry.monitoring.sources import ReferenceFromSource
from model_registry.monitoring.upload import PARQUET_TYPES
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
    Query(
        max_length=1000, description="CSV/Parquet column types as column:kind (numeric, categorical, boolean)"
    ),
]
FormatQuery = Annotated[
    Literal["json", "csv", "parquet"] | None,
    Query(description="the body's format when its content type does not say (application/octet-stream)"),
]


class ReferenceForm(BaseModel):
    """Documentation of the multipart body."""

    file: bytes = Field(description="CSV, JSON or Parquet, by its content type or file name (or ?format=)")
    types: list[Annotated[str, Field(max_length=300)]] = Field(
        default=[], max_length=1000, description="column:kind, repeatable"
    )


REFERENCE_BODY = json_body(
    {"oneOf": [inline_schema(ReferenceJson), inline_schema(ReferenceFromSource)]},
    **{media: {"schema": BINARY} for media in (CSV, PARQUET_TYPES[0], "application/octet-stream")},
    **{"multipart/form-data": {"schema": inline_schema(ReferenceForm)}},
)
BAD_GATEWAY: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorBody, "description": "The peer service holding the source data failed"}
}


def _find(request: Request, name: str, version: str) -> None:
    """404 before any byte is read, using a read-only session (no lock held during the upload)."""
    session = request.app.state.db.session(write=False)
    try:
        resolve_version(session, name, version)
    finally:
        session.close()


def _store(
    session: Session, name: str, version: str, profile: Profile, rows: int, who: str
) -> ReferenceSummary:
    models.lock_model(session, name)
    model, found = resolve_version(session, name, version)
    return service.put_reference(session, model, found, profile, rows, who)


@router.put(
    "/versions/{version}/monitoring/reference",
    response_model=ReferenceSummary,
    openapi_extra=REFERENCE_BODY,
    responses=BAD_GATEWAY,
    summary="Store the version's reference profile, built from JSON records, CSV or Parquet (raw or "
    "multipart, streamed), or fetched from the feature store or a tracking run (replaces any)",
)
async def put_reference(
    name: NamePath,
    version: VersionPath,
    request: Request,
    session: SessionDep,
    who: ActorDep,
    types: TypesQuery = [],
    format: FormatQuery = None,
) -> ReferenceSummary:
    await run_in_threadpool(_find, request, name, version)
    profile, rows = await reference_data.profile_of(request, types, format)
    return await run_in_threadpool(_store, session, name, version, profile, rows, who)


@router.get(
    "/versions/{version}/monitoring/reference",
    response_model=ReferenceRead,
    summary="The version's stored reference profile",
)
def get_reference(model: ModelDep, version: VersionDep, session: SessionDep) -> ReferenceRead:
    return service.read_reference(session, model, version)


# ---- prediction and label logs ----------------------------------------------------------------


class PredictionsJson(RootModel[PredictionRows | PredictionBatch]):
    """Documentation of the predictions body (the route parses it itself, column by column)."""


def _model_exists(request: Request, name: str) -> None:
    """404 before the body is parsed, on a read-only session (no lock held meanwhile)."""
    session = request.app.state.db.session(write=False)
    try:
        models.load_model(session, name)
    finally:
        session.close()


def _log(session: Session, name: str, batch: LoggedBatch) -> PredictionsAccepted:
    models.lock_model(session, name)
    return service.log_batch(session, models.load_model(session, name), batch)


@router.post(
    "/predictions",
    response_model=PredictionsAccepted,
    openapi_extra=json_body(inline_schema(PredictionsJson)),
    summary="Log up to 10,000 predictions (rows, or {predictions: rows})",
)
async def log_predictions(name: NamePath, request: Request) -> PredictionsAccepted:
    await run_in_threadpool(_model_exists, request, name)
    raw = await request.body()
    batch = await run_in_threadpool(logparse.parse, raw, utcnow())
    return await run_transaction(request, lambda session: _log(session, name, batch))


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


VariantQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, description="only predictions model serving logged for this variant"),
]


@router.get("/monitoring/drift", response_model=DriftRead, summary="Drift of a window of logged predictions")
def get_drift(
    model: ModelDep, session: SessionDep, window: WindowDep, variant: VariantQuery = None
) -> DriftRead:
    config = alert_service.stored_drift_config(session, model)  # the monitoring configuration's
    return service.drift_report(session, model, window.version, window.bounds, window.last_n, config, variant)


@router.get(
    "/monitoring/performance",
    response_model=PerformanceRead,
    summary="Performance of the labelled predictions of a window, beside the registered metrics",
)
def get_performance(model: ModelDep, session: SessionDep, window: WindowDep) -> PerformanceRead:
    return service.performance_report(session, model, window.version, window.bounds, window.last_n)


@router.get(
    "/monitoring/report",
    response_class=HTMLResponse,
    responses={
        200: {"description": "One self-contained HTML page (inline CSS and SVG, no script)"},
        **json_error_responses(),
    },
    summary="HTML report of a window: drift per column with both distributions, performance over time",
)
def get_report(model: ModelDep, session: SessionDep, window: WindowDep) -> HTMLResponse:
    config = alert_service.stored_drift_config(session, model)  # as the drift answer's
    page = service.report_page(session, model, window.version, window.bounds, window.last_n, config)
    return HTMLResponse(page, headers={"content-security-policy": POLICY})
