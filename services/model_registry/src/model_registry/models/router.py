from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from mlops_kit.auth import Role
from mlops_kit.deps import DatabaseDep, SessionDep, StoreDep, require
from mlops_kit.errors import Unprocessable, parse_json
from mlops_kit.openapi import json_body
from mlops_kit.pagination import Limit, Offset, page_fields
from mlops_kit.storage import ArtifactStore
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from model_registry.aliases import service as aliases
from model_registry.artifacts import service as artifacts
from model_registry.artifacts.upload import MAX_FILES, read_multipart
from model_registry.deps import ActorDep, ModelDep, NameOrAliasPath, NamePath, VersionDep, VersionPath
from model_registry.errors import ChecksumMismatch, MetadataRequired
from model_registry.models import service
from model_registry.models.schemas import (
    LineageRead,
    ModelPage,
    ModelRead,
    ModelUpdate,
    ModelVersionCreate,
    ModelVersionPage,
    ModelVersionRead,
    ModelVersionUpdate,
    VersionCreate,
)
from model_registry.types import Framework, Stage

router = APIRouter(prefix="/api/models", tags=["models"])

TagsQuery = Annotated[
    list[Annotated[str, Field(max_length=2600)]],
    Query(max_length=100, description="tags that must all match; comma-separated or repeated"),
]
MetricQuery = Annotated[
    list[Annotated[str, Field(max_length=300)]],
    Query(max_length=100, description="metric thresholds, e.g. accuracy>0.9"),
]

MULTIPART_BODY: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "string",
                "minLength": 2,
                "maxLength": 1_048_576,
                "description": "the version as a JSON object",
            },
            "file": {
                "type": "array",
                "maxItems": MAX_FILES,
                "items": {"type": "string", "format": "binary"},
                "description": "artifact file(s); the filename is the artifact path",
            },
        },
        "required": ["metadata"],
    }
}


def _body(schema: type[BaseModel]) -> dict[str, Any]:
    return json_body(schema, **{"multipart/form-data": MULTIPART_BODY})


def _parse(model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = errors[0]
        raise Unprocessable(
            f"invalid request: {'.'.join(map(str, first['loc']))}: {first['msg']}", {"errors": errors}
        ) from None


async def _registration(request: Request, store: StoreDep, schema: type[BaseModel]) -> tuple[Any, list[Any]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        metadata, files = await read_multipart(request, store)
        if metadata is None:
            for _, spooled in files:
                spooled.discard()
            raise MetadataRequired(
                "a multipart registration needs the form field 'metadata' (the version as JSON)"
            )
        return _parse(schema, metadata), files
    return _parse(schema, parse_json(await request.body())), []


def _verify(files: list[Any], sha256: str | None) -> None:
    if files and sha256:
        if len(files) != 1:
            raise ChecksumMismatch("sha256 applies to a single uploaded file; several were sent")
        files[0][1].verify(sha256)


def _register(
    session: Session,
    store: ArtifactStore,
    name: str,
    data: Any,
    files: list[Any],
    who: str,
    description: str | None = None,
) -> ModelVersionRead:
    model, version = service.register_version(session, name, data, who, description)
    if files:
        artifacts.attach(session, store, model, version, files)
    return service.version_read(session, model, version)


@router.post(
    "",
    status_code=201,
    response_model=ModelVersionRead,
    openapi_extra=_body(ModelVersionCreate),
    summary="Register a model version (JSON, or multipart with the artifact)",
)
async def register(request: Request, session: SessionDep, store: StoreDep, who: ActorDep) -> ModelVersionRead:
    data, files = await _registration(request, store, ModelVersionCreate)
    try:
        _verify(files, data.sha256)
        return await run_in_threadpool(
            _register, session, store, data.name, data, files, who, data.model_description
        )
    finally:
        for _, spooled in files:
            spooled.discard()


@router.get("", response_model=ModelPage, summary="List and search models")
def list_models(
    session: SessionDep,
    name_prefix: str | None = Query(None, max_length=128),
    search: str | None = Query(None, max_length=128, description="alias of name_prefix"),
    tags: TagsQuery = [],
    framework: Framework | None = None,
    metric: MetricQuery = [],
    order_by: str = Query(
        "name", max_length=200, description="name, created_at, updated_at; '-' for descending"
    ),
    limit: Limit = 100,
    offset: Offset = 0,
) -> ModelPage:
    items, total = service.list_models(
        session,
        name_prefix=name_prefix or search,
        tags=tags,
        framework=framework,
        metric=metric,
        order_by=order_by,
        limit=limit,
        offset=offset,
    )
    return ModelPage(items=items, **page_fields(total, limit, offset))


@router.get(
    "/{name}",
    response_model=ModelRead | ModelVersionRead,
    summary="Get a model with its latest versions; `name@alias` resolves an alias",
)
async def get_model(
    name: NameOrAliasPath, session: SessionDep, db: DatabaseDep, versions_limit: Limit = 100
) -> ModelRead | Response:
    if "@" in name:
        model_name, _, alias = name.partition("@")
        body = await service.read_version_json(db, model_name, f"@{alias}")
        return Response(body, media_type="application/json")
    return await run_in_threadpool(service.model_with_versions, session, name, versions_limit)


@router.patch("/{name}", response_model=ModelRead, summary="Update a model's description or tags")
def update_model(model: ModelDep, change: ModelUpdate, session: SessionDep) -> ModelRead:
    service.update_model(session, model, change)
    return service.model_reads(session, [model])[0]


@router.delete(
    "/{name}",
    status_code=204,
    dependencies=[require(Role.admin)],
    summary="Delete a model, all its versions, aliases and artifacts",
)
def delete_model(model: ModelDep, session: SessionDep, store: StoreDep) -> None:
    artifacts.remove_after_commit(session, store, artifacts.model_prefix(model))
    service.delete_model(session, model)


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=ModelVersionRead,
    openapi_extra=_body(VersionCreate),
    summary="Register a new version of a model",
)
async def register_version(
    name: NamePath, request: Request, session: SessionDep, store: StoreDep, who: ActorDep
) -> ModelVersionRead:
    service.check_name(name)
    data, files = await _registration(request, store, VersionCreate)
    try:
        _verify(files, data.sha256)
        return await run_in_threadpool(_register, session, store, name, data, files, who)
    finally:
        for _, spooled in files:
            spooled.discard()


@router.get("/{name}/versions", response_model=ModelVersionPage, summary="List a model's versions")
def list_versions(
    model: ModelDep,
    session: SessionDep,
    tags: TagsQuery = [],
    framework: Framework | None = None,
    stage: Stage | None = None,
    metric: MetricQuery = [],
    order_by: str = Query(
        "-version", max_length=200, description="version, created_at, updated_at, metric:<name>"
    ),
    limit: Limit = 100,
    offset: Offset = 0,
) -> ModelVersionPage:
    items, total = service.list_versions(
        session,
        model,
        tags=tags,
        framework=framework,
        stage=stage,
        metric=metric,
        order_by=order_by,
        limit=limit,
        offset=offset,
    )
    return ModelVersionPage(items=items, **page_fields(total, limit, offset))


@router.get(
    "/{name}/versions/{version}",
    response_model=ModelVersionRead,
    summary="Get a version ('latest' and '@alias' work too)",
)
async def get_version(name: NamePath, version: VersionPath, db: DatabaseDep) -> Response:
    body = await service.read_version_json(db, name, version)
    return Response(body, media_type="application/json")


@router.patch("/{name}/versions/{version}", response_model=ModelVersionRead)
def update_version(
    model: ModelDep, version: VersionDep, change: ModelVersionUpdate, session: SessionDep
) -> ModelVersionRead:
    service.update_version(session, version, change)
    return service.version_read(session, model, version)


@router.post(
    "/{name}/versions/{version}/archive",
    response_model=ModelVersionRead,
    summary="Archive a version (stage Archived)",
)
def archive_version(
    model: ModelDep, version: VersionDep, session: SessionDep, who: ActorDep
) -> ModelVersionRead:
    aliases.transition_stage(session, model, version, "Archived", False, who)
    return service.version_read(session, model, version)


@router.delete(
    "/{name}/versions/{version}", status_code=204, summary="Delete a version with its aliases and artifacts"
)
def delete_version(model: ModelDep, version: VersionDep, session: SessionDep, store: StoreDep) -> None:
    artifacts.remove_after_commit(session, store, artifacts.version_prefix(model, version))
    service.delete_version(session, version)


@router.get(
    "/{name}/versions/{version}/lineage",
    response_model=LineageRead,
    summary="Upstream references recorded for a version",
)
def lineage(model: ModelDep, version: VersionDep, session: SessionDep) -> LineageRead:
    return service.lineage(session, model, version)
