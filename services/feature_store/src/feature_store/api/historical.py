"""`POST /api/features/historical`: point-in-time-correct training data from the offline store."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from mlops_kit.bounds import INT64_SCHEMA_MAX
from mlops_kit.deps import READ_ONLY, run_transaction
from mlops_kit.errors import parse_json
from mlops_kit.openapi import BINARY, inline_schema
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from feature_store.api.body import read_body
from feature_store.deps import SettingsDep, ViewsDep
from feature_store.offline import output
from feature_store.offline.frames import (
    Body,
    Frame,
    frame_from_records,
    frame_from_table,
    read_table,
)
from feature_store.offline.historical import HistoricalQuery, parse_request, resolve_targets
from feature_store.offline.pit import retrieve

router = APIRouter(tags=["offline store"])

DOC: dict[str, Any] = READ_ONLY | {
    "requestBody": {
        "description": (
            'JSON `{"entity_rows": [{"<join key>": ..., "event_timestamp": ..., ...}], "features": '
            '["set:feature", "set:*", "feature"]}` (or `"feature_service": "name"`), or the entity '
            "rows as a Parquet or CSV file (raw body or multipart `file` part) with `features` / "
            "`feature_service` as query parameters."
        ),
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
PARQUET = "application/vnd.apache.parquet"


class HistoricalRead(BaseModel):
    columns: list[str] = Field(description="entity columns as given, then one per feature")
    rows: list[list[Any]] = Field(description="one per entity row, in order; timestamps as ISO 8601")


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the training frame: JSON, or Parquet with `Accept: application/vnd.apache.parquet`",
        "content": {
            "application/json": {"schema": inline_schema(HistoricalRead)},
            PARQUET: {"schema": BINARY},
        },
    }
}


def _entity_frame(fmt: str, data: bytes, query: HistoricalQuery) -> tuple[Frame, HistoricalQuery]:
    if fmt == "json":
        body = parse_json(data)
        parsed = parse_request(body)
        return frame_from_records(body["entity_rows"], "entity_rows"), parsed
    return frame_from_table(read_table(Body(fmt, data))), query


@router.post("/api/features/historical", openapi_extra=DOC, response_class=Response, responses=ANSWERS)
async def historical_features(
    request: Request,
    views: ViewsDep,
    settings: SettingsDep,
    features: Annotated[
        list[Annotated[str, Field(max_length=300)]],
        Query(max_length=10_000, description="with a file body: `set:feature`, `set:*`, bare names"),
    ] = [],
    feature_service: Annotated[
        str | None, Query(max_length=128, description="with a file body: a feature service")
    ] = None,
    feature_service_version: Annotated[int | None, Query(ge=1, le=INT64_SCHEMA_MAX)] = None,
    full_feature_names: bool = False,
    format: Annotated[
        str | None, Query(max_length=16, description="body format when not given by Content-Type")
    ] = None,
) -> Response:
    """Each entity row joined with, per feature set, the newest row at or before its
    `event_timestamp` (within the set's TTL, inclusive); rows without a match are kept with
    nulls; order and duplicates are preserved. Answers JSON `{"columns": [...], "rows": [[...]]}`
    (entity columns as given, then the features; timestamps as ISO 8601), or Parquet with
    `Accept: application/vnd.apache.parquet`."""
    body = await read_body(request, format)
    query = HistoricalQuery(
        refs=[r for item in features for r in item.split(",") if r.strip()],
        feature_service=feature_service,
        feature_service_version=feature_service_version,
        full_feature_names=full_feature_names,
    )
    frame, parsed = await run_in_threadpool(_entity_frame, body.format, body.data, query)
    parsed.check(frame, settings.max_historical_rows)
    as_parquet = PARQUET in request.headers.get("accept", "")

    def work(session: Session) -> Response:
        targets = resolve_targets(views, session, parsed, frame)
        columns = retrieve(session, frame, targets)
        if as_parquet:
            return Response(output.parquet(frame, targets, columns), media_type=PARQUET)
        return Response(output.json(frame, targets, columns), media_type="application/json")

    return await run_transaction(request, work)
