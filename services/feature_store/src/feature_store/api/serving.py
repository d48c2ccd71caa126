"""Online serving (`GET /api/features/serve`, `POST /api/features/online`) and streaming push
(`POST /api/feature-sets/{name}/push`).

Serving stays on the event loop: the request's resolved features come from a per-process cache,
the online store is read in one round trip and the answer is encoded once with orjson.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from mlops_kit.bounds import INT64_SCHEMA_MAX, NO_NUL, Int64, PathStr
from mlops_kit.deps import READ_ONLY, run_transaction
from mlops_kit.errors import PayloadTooLarge, parse_json
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from feature_store.deps import OnlineDep, OnlineMetricsDep, ServingDep, ViewsDep
from feature_store.errors import InvalidRequest, OnlineStoreUnavailable, OnlineWriteFailed, TooManyEntities
from feature_store.keys import MAX_KEY
from feature_store.online import OnlineStore
from feature_store.online import push as pushing
from feature_store.online.base import OnlineRow
from feature_store.online.serving import Plan, Serving, plan_for_refs, plan_for_service, record_keys, render
from feature_store.registry.views import FeatureSetView

router = APIRouter(tags=["online serving"])
JSON = "application/json"


# documentation of the hand-parsed body (the settings' max_entities_per_request bounds entities)
Ref = Annotated[str, Field(max_length=300), NO_NUL]
KeyValue = Annotated[str, Field(max_length=MAX_KEY), NO_NUL] | Int64
Entities = (
    Annotated[list[KeyValue | Annotated[dict[Ref, KeyValue], Field(max_length=8)]], Field(max_length=10_000)]
    | Annotated[dict[Ref, Annotated[list[KeyValue], Field(max_length=10_000)]], Field(max_length=8)]
)


class OnlineRequest(BaseModel):
    """Give `features` (with optional `feature_set`) or `feature_service`."""

    entities: Entities = Field(
        description='join-key values `["u1", "u2"]`, objects `[{"user_id": "u1"}]` (composite keys), '
        'or columns `{"user_id": ["u1", "u2"]}`'
    )
    features: list[Ref] | None = Field(
        default=None,
        max_length=10_000,
        description="`set:feature`, `set:*`, or a feature name (unique, or in `feature_set`)",
    )
    feature_set: Ref | None = Field(default=None, description="where bare feature names are looked up")
    feature_service: Ref | None = None
    feature_service_version: int | None = Field(
        default=None, ge=1, le=INT64_SCHEMA_MAX, description="default: the latest"
    )


class OnlineResult(BaseModel):
    entity: Any = Field(description="the entity as requested")
    values: dict[str, Any] = Field(description="null unless PRESENT")
    statuses: dict[str, str] = Field(description="PRESENT, MISSING or EXPIRED")
    event_timestamps: dict[str, str | None] = Field(description="the row's event time (ISO 8601 UTC)")


class OnlineResponse(BaseModel):
    features: list[str] = Field(description="the keys of values/statuses/event_timestamps, in order")
    feature_refs: list[str] = Field(description="`set:feature` of each key, in the same order")
    results: list[OnlineResult] = Field(description="one per requested entity, in request order")


class PushRequest(BaseModel):
    rows: list[Annotated[dict[Ref, Any], Field(max_length=1100)]] = Field(
        description="each: the join key column(s), `event_timestamp` (ISO 8601, naive = UTC, or epoch "
        "seconds), optional `created_timestamp` (default: now) and feature columns",
        max_length=pushing.MAX_PUSH_ROWS,
    )


class PushResponse(BaseModel):
    feature_set: str
    version: int
    rows_written: int = Field(description="rows written to the offline store")
    event_time: dict[str, str | None] = Field(description="`min` and `max` event time of the rows")
    online_updated: int = Field(description="rows that became the online value (not older than it)")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": model.model_json_schema()}}}}


# serving -------------------------------------------------------------------------------------


def _check_count(serving: Serving, n: int) -> None:
    if n == 0:
        raise InvalidRequest("no entities given", {})
    limit = serving.settings.max_entities_per_request
    if n > limit:
        raise TooManyEntities(
            f"{n} entities in one request; at most {limit}",
            {"entities": n, "max_entities_per_request": limit},
        )


async def _plan_for_refs(serving: Serving, refs: list[str], default_set: str | None, key: Hashable) -> Plan:
    cache = serving.plans
    plan = cache.get(key)
    if plan is None:
        plan = await run_in_threadpool(plan_for_refs, serving.db, cache.views, refs, default_set)
        cache.put(key, plan)
    return plan


async def _answer(serving: Serving, online: OnlineStore, plan: Plan, entities: list[Any]) -> Response:
    keys = record_keys(plan, entities)
    metrics = serving.metrics
    try:
        records = await online.read(keys)
    except Exception as exc:
        metrics.read_errors.inc()
        what = str(exc) if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        raise OnlineStoreUnavailable(f"the online store failed: {what}"[:500], {"retryable": True}) from exc
    missing = records.count(None)
    metrics.found.inc(len(records) - missing)
    metrics.not_found.inc(missing)
    return Response(render(plan, entities, records, time.time_ns() // 1000), media_type=JSON)


MAX_QUERY = 65_536  # entities or feature references in one GET, comma-separated


def _query(
    name: str, description: str, *, required: bool = True, max_length: int = MAX_QUERY
) -> dict[str, Any]:
    schema = {"type": "string", "maxLength": max_length}
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


SERVE_PARAMETERS = {
    "parameters": [
        _query("entities", "comma-separated values of the entity's join key"),
        _query("features", "comma-separated `set:feature`, `set:*` or feature names"),
        _query("feature_set", "where bare feature names are looked up", required=False, max_length=128),
    ]
}


@router.get("/api/features/serve", response_model=OnlineResponse, openapi_extra=SERVE_PARAMETERS)
async def serve_features(request: Request, serving: ServingDep, online: OnlineDep) -> Response:
    """Online feature values of a few entities (the platform docs' shape):
    `GET /api/features/serve?entities=user_123,user_456&features=age,avg_session_duration`.

    Answer: `{"features": [keys], "feature_refs": ["set:feature", ...], "results": [{"entity",
    "values", "statuses", "event_timestamps"}]}`, one result per entity in request order. Keys are
    feature names; a name requested from two feature sets is keyed `set:feature`. Status PRESENT,
    MISSING (no row, or no value in it) or EXPIRED (older than the feature set's TTL;
    value null). Errors: 404 unknown feature set or feature, 400 no/too many entities or a key
    that does not fit the entity (an int entity given `abc`)."""
    # parsed by hand (documented in openapi_extra): FastAPI's parameter validation costs more
    # than the rest of a one-entity request
    query = request.query_params
    entities, features, feature_set = query.get("entities"), query.get("features"), query.get("feature_set")
    if entities is None or features is None:
        raise InvalidRequest("give entities and features", {"entities": entities, "features": features})
    if max(len(entities), len(features), len(feature_set or "")) > MAX_QUERY:
        raise InvalidRequest(
            f"entities, features and feature_set are at most {MAX_QUERY} characters each", {}
        )
    items = [e.strip() for e in entities.split(",")]
    ids = [e for e in items if e]
    _check_count(serving, len(ids))
    plan = await _plan_for_refs(serving, features.split(","), feature_set, ("get", features, feature_set))
    return await _answer(serving, online, plan, ids)


@router.post(
    "/api/features/online",
    response_model=OnlineResponse,
    openapi_extra={**READ_ONLY, **_schema(OnlineRequest)},
)
async def online_features(request: Request, serving: ServingDep, online: OnlineDep) -> Response:
    """Online feature values, Feast-style: `{"entities": [...], "features": [...]}` or
    `{"entities": [...], "feature_service": "name", "feature_service_version": 2}`.

    `entities` is a list of join-key values, a list of objects (composite keys: every join key of
    the entity), or columns `{"user_id": ["u1", "u2"]}`. The answer is the same as
    `GET /api/features/serve`'s; each result's `entity` echoes the entity as requested (an object
    per row for columns). A feature service answers the features it pins, typed as the pinned
    schema versions define them."""
    body = _json(await request.body())
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object", {})
    unknown = sorted(set(body) - set(OnlineRequest.model_fields))
    if unknown:
        raise InvalidRequest(f"unknown fields {unknown}", {"unknown": unknown})
    entities = _entities(body.get("entities"))
    _check_count(serving, len(entities))
    service = body.get("feature_service")
    if service is not None:
        plan = await _plan_for_service(serving, service, body.get("feature_service_version"))
    else:
        refs = body.get("features")
        if isinstance(refs, str):
            refs = refs.split(",")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InvalidRequest("give features (a list of feature references) or a feature_service", {})
        default_set = body.get("feature_set")
        if default_set is not None and not isinstance(default_set, str):
            raise InvalidRequest("feature_set must be a string", {})
        plan = await _plan_for_refs(serving, refs, default_set, ("post", tuple(refs), default_set))
    return await _answer(serving, online, plan, entities)


def _json(raw: bytes) -> Any:
    return parse_json(raw)


def _entities(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict):
        columns = list(raw.items())
        if not all(isinstance(values, list) for _, values in columns):
            raise InvalidRequest('entity columns must be lists: {"user_id": ["u1", "u2"]}', {})
        lengths = {len(values) for _, values in columns}
        if len(lengths) > 1:
            raise InvalidRequest(
                "entity columns differ in length", {"lengths": {k: len(v) for k, v in columns}}
            )
        n = lengths.pop() if lengths else 0
        return [{k: values[i] for k, values in columns} for i in range(n)]
    raise InvalidRequest('give "entities": a list of keys, a list of objects, or columns', {})


async def _plan_for_service(serving: Serving, name: Any, version: Any) -> Plan:
    if not isinstance(name, str) or not name:
        raise InvalidRequest("feature_service must be a name", {})
    if version is not None and (type(version) is not int or version < 1):
        raise InvalidRequest("feature_service_version must be a positive int", {"version": version})
    cache = serving.plans
    key = ("service", name, version)
    plan = cache.get(key)
    if plan is None:
        plan = await run_in_threadpool(plan_for_service, serving.db, cache.views, name, version)
        cache.put(key, plan)
    return plan


# push ----------------------------------------------------------------------------------------


@router.post(
    "/api/feature-sets/{name}/push",
    response_model=PushResponse,
    tags=["ingestion"],
    openapi_extra=_schema(PushRequest),
)
async def push_rows(
    name: PathStr,
    request: Request,
    views: ViewsDep,
    online: OnlineDep,
    metrics: OnlineMetricsDep,
    version: Annotated[
        int | None,
        Query(ge=1, le=INT64_SCHEMA_MAX, description="schema version of the rows (default: latest)"),
    ] = None,
) -> Response:
    """Push one row (a row object) or a small batch (`{"rows": [...]}`, at most 1000) of a feature
    set: checked and kept in the offline store (with statistics) exactly as `POST
    /api/feature-sets/{name}/rows` does, in one transaction, then made the online values where they
    are the newest (event time, then created time). A row replaces the entity's whole online row;
    a feature left out of it is served as MISSING.

    A value that does not fit its feature's type answers 422 TYPE_MISMATCH with `details.errors`
    naming rows, columns and why; a column that is no feature 422 UNKNOWN_COLUMN; a missing join
    key or `event_timestamp` column 422 MISSING_COLUMN; nothing is written then. If the online
    store fails after the offline rows are committed: 503 ONLINE_WRITE_FAILED (the offline rows
    stay; the next materialization brings the online store up to date)."""
    rows = pushing.rows_of(_json(await request.body()))
    if len(rows) > pushing.MAX_PUSH_ROWS:
        raise PayloadTooLarge(
            f"{len(rows)} rows in one push; at most {pushing.MAX_PUSH_ROWS} "
            "(bulk loads go to the offline store and are materialized)",
            {"rows": len(rows), "max_rows": pushing.MAX_PUSH_ROWS},
        )
    request.state.audit_details = {"feature_set": name, "rows": len(rows)}

    def work(session: Session) -> tuple[FeatureSetView, dict[str, Any], list[OnlineRow]]:
        view = views.peek(name) or views.get(session, name)
        wanted = view.latest_version if version is None else version
        return (view, *pushing.write_offline(session, view, wanted, rows))

    view, summary, online_rows = await run_transaction(request, work)
    try:
        summary["online_updated"] = updated = await online.write(view, online_rows)
    except Exception as exc:
        metrics.write_errors.inc()
        raise OnlineWriteFailed(
            f"rows kept in the offline store, but the online store failed: {type(exc).__name__}: {exc}"[:500],
            {"retryable": True, "offline_rows": len(online_rows)},
        ) from exc
    metrics.pushed_applied.inc(updated)
    metrics.pushed_older.inc(len(online_rows) - updated)
    if updated:
        metrics.pushed(view.name)
    return Response(orjson.dumps(summary), media_type=JSON)
