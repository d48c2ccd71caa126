"""`POST /api/feature-sets/{name}/rows`: batch ingestion into the offline store."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from mlops_kit.bounds import INT64_SCHEMA_MAX, PathStr
from mlops_kit.db import Database
from mlops_kit.deps import DatabaseDep, run_transaction
from mlops_kit.errors import parse_json
from sqlalchemy.orm import Session

from feature_store.api.body import read_body
from feature_store.api.schemas import IngestRead
from feature_store.deps import ViewsDep
from feature_store.errors import InvalidRequest
from feature_store.offline import ingest
from feature_store.offline.frames import (
    Body,
    Frame,
    frame_from_records,
    frame_from_table,
    read_table,
)
from feature_store.registry.views import FeatureSetView, ViewCache

router = APIRouter(tags=["offline store"])

ROWS_BODY: dict[str, Any] = {
    "requestBody": {
        "description": (
            'JSON `{"rows": [{"<join key>": ..., "event_timestamp": ..., "created_timestamp": ..., '
            '"<feature>": ...}]}`, or a CSV or Parquet file: `text/csv`, `application/vnd.apache.parquet`, '
            "`application/octet-stream` with `?format=`, or multipart with a `file` part."
        ),
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _view(db: Database, views: ViewCache, name: str) -> FeatureSetView:
    with db.session(write=False) as session:
        return views.get(session, name)


def _frame(view: FeatureSetView, version: int, fmt: str, data: bytes) -> Frame:
    if fmt == "json":
        body = parse_json(data)
        if not isinstance(body, dict) or "rows" not in body:
            raise InvalidRequest('the JSON body must be {"rows": [...]}')
        return frame_from_records(body["rows"], "rows")
    strings = tuple(view.join_keys) + tuple(f.name for f in view.features(version) if f.type == "string")
    return frame_from_table(read_table(Body(fmt, data), strings))


@router.post(
    "/api/feature-sets/{name}/rows", status_code=201, openapi_extra=ROWS_BODY, response_model=IngestRead
)
async def ingest_rows(
    name: PathStr,
    request: Request,
    db: DatabaseDep,
    views: ViewsDep,
    version: Annotated[
        int | None, Query(ge=1, le=INT64_SCHEMA_MAX, description="schema version (default: the latest)")
    ] = None,
    format: Annotated[Literal["json", "csv", "parquet"] | None, Query(description="body format")] = None,
) -> dict[str, Any]:
    """Validate every row against the schema, then write all of them (or none) to the offline
    store and update the feature statistics. Naive timestamps are UTC. Answers the rows
    written, the schema version and the event-time range."""
    body = await read_body(request, format)
    view = await run_in_threadpool(_view, db, views, name)
    wanted = view.latest_version if version is None else version
    view.features(wanted)

    def prepare() -> ingest.Prepared:
        frame = _frame(view, wanted, body.format, body.data)
        if frame.size == 0:
            raise InvalidRequest("no rows to ingest")
        return ingest.prepare(view, wanted, frame)

    prepared = await run_in_threadpool(prepare)

    def work(session: Session) -> dict[str, Any]:
        return ingest.write(session, view, prepared)

    return await run_transaction(request, work)
