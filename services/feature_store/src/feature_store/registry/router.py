"""Registry routes: `/api/entities`, `/api/feature-sets` (+ versions), `/api/feature-services`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from mlops_kit.bounds import INT64_SCHEMA_MAX, PathStr
from mlops_kit.deps import SessionDep, run_transaction
from mlops_kit.pagination import Limit, Offset, page_fields
from pydantic import Field

from feature_store.deps import OnlineDep, ViewsDep
from feature_store.errors import OnlineDeleteFailed
from feature_store.registry import schemas as s
from feature_store.registry import service

router = APIRouter()
Version = Annotated[
    int | None, Query(ge=1, le=INT64_SCHEMA_MAX, description="a schema version (default: the latest)")
]


# entities ------------------------------------------------------------------------------------


@router.post("/api/entities", status_code=201, response_model=s.EntityRead, tags=["entities"])
def create_entity(body: s.EntityCreate, session: SessionDep) -> s.EntityRead:
    return service.entity_read(service.create_entity(session, body))


@router.get("/api/entities", response_model=s.EntityPage, tags=["entities"])
def list_entities(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> s.EntityPage:
    rows, total = service.list_entities(session, limit, offset)
    return s.EntityPage(items=[service.entity_read(e) for e in rows], **page_fields(total, limit, offset))


@router.get("/api/entities/{name}", response_model=s.EntityRead, tags=["entities"])
def get_entity(name: PathStr, session: SessionDep) -> s.EntityRead:
    return service.entity_read(service.get_entity(session, name))


@router.patch("/api/entities/{name}", response_model=s.EntityRead, tags=["entities"])
def update_entity(name: PathStr, body: s.EntityUpdate, session: SessionDep) -> s.EntityRead:
    return service.entity_read(service.update_entity(session, name, body))


@router.delete("/api/entities/{name}", status_code=204, tags=["entities"])
def delete_entity(name: PathStr, session: SessionDep) -> Response:
    service.delete_entity(session, name)
    return Response(status_code=204)


# feature sets --------------------------------------------------------------------------------


@router.post("/api/feature-sets", status_code=201, response_model=s.FeatureSetRead, tags=["feature sets"])
def create_feature_set(body: s.FeatureSetCreate, views: ViewsDep, session: SessionDep) -> s.FeatureSetRead:
    """Create a feature set (version 1). Without `entity`, it belongs to the `default` entity
    whose join key is `entity_id`."""
    fs = service.create_feature_set(views, session, body)
    return service.feature_set_read(session, fs)


@router.put(
    "/api/feature-sets/{name}",
    response_model=s.FeatureSetRead,
    responses={201: {"model": s.FeatureSetRead, "description": "Created"}},
    tags=["feature sets"],
)
def apply_feature_set(
    name: PathStr, body: s.FeatureSetApply, views: ViewsDep, response: Response, session: SessionDep
) -> s.FeatureSetRead:
    """Idempotent apply (as `feast apply`): creates the set (201), or makes a new schema version
    when the features changed (additive; removals or type changes need `breaking: true`), or
    changes nothing (200)."""
    fs, created = service.apply_feature_set(views, session, name, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return service.feature_set_read(session, fs)


@router.get("/api/feature-sets", response_model=s.FeatureSetPage, tags=["feature sets"])
def list_feature_sets(
    session: SessionDep,
    entity: Annotated[str | None, Query(max_length=128)] = None,
    owner: Annotated[str | None, Query(max_length=256)] = None,
    tags: Annotated[
        list[Annotated[str, Field(max_length=8300)]],
        Query(max_length=100, description="`key` or `key=value`; all must match"),
    ] = [],
    name_prefix: Annotated[str | None, Query(max_length=128)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> s.FeatureSetPage:
    rows, total = service.list_feature_sets(
        session, entity=entity, owner=owner, tags=tags, name_prefix=name_prefix, limit=limit, offset=offset
    )
    return s.FeatureSetPage(
        items=service.feature_set_reads(session, rows), **page_fields(total, limit, offset)
    )


@router.get("/api/feature-sets/{name}", response_model=s.FeatureSetRead, tags=["feature sets"])
def get_feature_set(name: PathStr, session: SessionDep, version: Version = None) -> s.FeatureSetRead:
    return service.feature_set_read(session, service.get_feature_set(session, name), version)


@router.patch("/api/feature-sets/{name}", response_model=s.FeatureSetRead, tags=["feature sets"])
def update_feature_set(
    name: PathStr, body: s.FeatureSetUpdate, views: ViewsDep, session: SessionDep
) -> s.FeatureSetRead:
    """Description, owner, tags, TTL (`ttl_seconds: 0` removes it). Schema changes are versions."""
    fs = service.update_feature_set(views, session, name, body)
    return service.feature_set_read(session, fs)


@router.delete("/api/feature-sets/{name}", status_code=204, tags=["feature sets"])
async def delete_feature_set(
    name: PathStr,
    request: Request,
    views: ViewsDep,
    online: OnlineDep,
    force: Annotated[bool, Query(description="even if feature services use it")] = False,
) -> Response:
    """Deletes the set with every version, offline row, statistic and job, and its online values."""
    set_id = await run_transaction(
        request, lambda session: service.delete_feature_set(views, session, name, force=force)
    )
    if online is not None:
        try:
            await online.delete_feature_set(set_id)
        except Exception as exc:
            raise OnlineDeleteFailed(
                f"the feature set is deleted, but the online store failed to drop its values: "
                f"{type(exc).__name__}: {exc}"[:500],
                {"feature_set_deleted": True, "retryable": False},
            ) from exc
    return Response(status_code=204)


@router.get("/api/feature-sets/{name}/versions", response_model=list[s.VersionRead], tags=["feature sets"])
def list_versions(name: PathStr, session: SessionDep) -> list[s.VersionRead]:
    fs = service.get_feature_set(session, name)
    return [_version_read(name, service.get_version(session, fs, v)) for v in range(1, fs.latest_version + 1)]


@router.post(
    "/api/feature-sets/{name}/versions", status_code=201, response_model=s.VersionRead, tags=["feature sets"]
)
def create_version(
    name: PathStr, body: s.VersionCreate, views: ViewsDep, session: SessionDep
) -> s.VersionRead:
    """A new schema version from the whole new feature list. Adding features is always allowed;
    removing or retyping one answers 409 BREAKING_SCHEMA_CHANGE unless `breaking: true`."""
    fs = service.get_feature_set(session, name, lock=True)
    version = service.add_version(
        views, session, fs, body.features, breaking=body.breaking, change=body.change
    )
    assert version is not None
    return _version_read(name, version)


@router.get(
    "/api/feature-sets/{name}/versions/{version}", response_model=s.VersionRead, tags=["feature sets"]
)
def get_version(
    name: PathStr, version: Annotated[int, Path(ge=1, le=INT64_SCHEMA_MAX)], session: SessionDep
) -> s.VersionRead:
    fs = service.get_feature_set(session, name)
    return _version_read(name, service.get_version(session, fs, version))


def _version_read(name: str, row: object) -> s.VersionRead:
    return s.VersionRead(
        feature_set=name,
        version=row.version,  # type: ignore[attr-defined]
        features=[s.FeatureOut(**f) for f in row.features],  # type: ignore[attr-defined]
        breaking=row.breaking,  # type: ignore[attr-defined]
        change=row.change,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )


# feature services ----------------------------------------------------------------------------


@router.post(
    "/api/feature-services",
    status_code=201,
    response_model=s.FeatureServiceRead,
    responses={200: {"model": s.FeatureServiceRead, "description": "The same features: the latest version"}},
    tags=["feature services"],
)
def create_feature_service(
    body: s.FeatureServiceCreate, views: ViewsDep, response: Response, session: SessionDep
) -> s.FeatureServiceRead:
    """Version 1, or a new version when the features differ from the latest (201); the same
    features again answer the latest version (200). Each reference is pinned to the feature
    set's current schema version: what a model version records as its lineage."""
    svc, created = service.create_service(views, session, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return service.service_read(svc)


@router.get("/api/feature-services", response_model=s.FeatureServicePage, tags=["feature services"])
def list_feature_services(
    session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> s.FeatureServicePage:
    rows, total = service.list_services(session, limit, offset)
    return s.FeatureServicePage(
        items=[service.service_read(x) for x in rows], **page_fields(total, limit, offset)
    )


@router.get("/api/feature-services/{name}", response_model=s.FeatureServiceRead, tags=["feature services"])
def get_feature_service(name: PathStr, session: SessionDep, version: Version = None) -> s.FeatureServiceRead:
    return service.service_read(service.get_service(session, name, version))


@router.get(
    "/api/feature-services/{name}/versions",
    response_model=list[s.FeatureServiceRead],
    tags=["feature services"],
)
def list_feature_service_versions(name: PathStr, session: SessionDep) -> list[s.FeatureServiceRead]:
    return [service.service_read(x) for x in service.service_versions(session, name)]


@router.delete("/api/feature-services/{name}", status_code=204, tags=["feature services"])
def delete_feature_service(name: PathStr, session: SessionDep) -> Response:
    service.delete_service(session, name)
    return Response(status_code=204)
