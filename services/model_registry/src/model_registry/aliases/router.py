from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from mlops_kit.deps import DatabaseDep, SessionDep
from mlops_kit.pagination import Limit, Offset, page_fields

from model_registry.aliases import service
from model_registry.aliases.schemas import (
    MAX_MODELS,
    MAX_ROWS,
    AliasRead,
    AliasSet,
    AliasStateRead,
    StageTransition,
    TransitionPage,
    TransitionRead,
)
from model_registry.deps import ActorDep, AliasPath, ModelDep, NamePath, VersionDep
from model_registry.errors import InvalidAlias
from model_registry.models import service as models
from model_registry.models.schemas import ModelVersionRead
from model_registry.tables import Alias, RegisteredModel
from model_registry.types import ModelName, Stage, check_alias

per_model = APIRouter(prefix="/api/models/{name}", tags=["aliases and stages"])
feed = APIRouter(prefix="/api/aliases", tags=["aliases and stages"])

ModelsQuery = Annotated[
    list[ModelName],
    Query(
        alias="model",
        max_length=MAX_MODELS,
        description=f"a model to include; repeat for several (at most {MAX_MODELS:,}); none: every model",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="if-none-match",
        max_length=8192,
        description="ETags of states already held, or `*`: answered 304 with no body when one is current",
    ),
]
ETAG: dict[str, Any] = {
    "ETag": {"description": "strong: the SHA-256 of the body", "schema": {"type": "string"}}
}
STATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": AliasStateRead, "description": "the current state", "headers": ETAG},
    304: {"description": "Not Modified: If-None-Match names the current ETag; no body", "headers": ETAG},
}
# an entity-tag (RFC 9110 8.8.3), weak or strong: If-None-Match compares them weakly
ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def _alias(alias: str) -> str:
    try:
        return check_alias(alias)
    except ValueError as exc:
        raise InvalidAlias(str(exc)) from None


def _read(model: RegisteredModel, row: Alias, version: str) -> AliasRead:
    return AliasRead(
        name=model.name,
        alias=row.alias,
        version=version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@per_model.get("/aliases", response_model=list[AliasRead], summary="List a model's aliases")
def list_aliases(model: ModelDep, session: SessionDep) -> list[AliasRead]:
    return [_read(model, row, version) for row, version in service.list_aliases(session, model)]


@per_model.get("/aliases/{alias}", response_model=ModelVersionRead, summary="Resolve name@alias")
async def resolve_alias(name: NamePath, alias: AliasPath, db: DatabaseDep) -> Response:
    body = await models.read_version_json(db, name, f"@{alias}")
    return Response(body, media_type="application/json")


@per_model.put("/aliases/{alias}", response_model=AliasRead, summary="Set or move an alias")
def set_alias(
    model: ModelDep, alias: AliasPath, body: AliasSet, session: SessionDep, who: ActorDep
) -> AliasRead:
    target = models.load_version(session, model, body.version)
    row = service.set_alias(session, model, _alias(alias), target, who, body.comment)
    return _read(model, row, target.version)


@per_model.delete("/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(model: ModelDep, alias: AliasPath, session: SessionDep, who: ActorDep) -> None:
    service.delete_alias(session, model, alias, who)


@per_model.post(
    "/aliases/{alias}/rollback",
    response_model=AliasRead | None,
    summary="Point the alias back at its previous target",
)
def rollback_alias(model: ModelDep, alias: AliasPath, session: SessionDep, who: ActorDep) -> AliasRead | None:
    row = service.rollback_alias(session, model, alias, who)
    if row is None:
        return None
    return _read(model, row, service.resolve(session, model, alias).version)


@per_model.post(
    "/versions/{version}/stage",
    response_model=ModelVersionRead,
    summary="Move a version to a stage (None, Staging, Production, Archived)",
)
def transition(
    model: ModelDep, version: VersionDep, body: StageTransition, session: SessionDep, who: ActorDep
) -> ModelVersionRead:
    service.transition_stage(session, model, version, body.stage, body.archive_existing, who, body.comment)
    return models.version_read(session, model, version)


@per_model.post(
    "/stages/{stage}/rollback",
    response_model=list[str],
    summary="Undo the last transition into a stage; returns the versions moved back",
)
def rollback_stage(model: ModelDep, stage: Stage, session: SessionDep, who: ActorDep) -> list[str]:
    return service.rollback_stage(session, model, stage, who)


@per_model.get("/history", response_model=TransitionPage, summary="Who moved which alias or stage, when")
def history(
    model: ModelDep,
    session: SessionDep,
    kind: Literal["alias", "stage"] | None = None,
    of: str | None = Query(None, max_length=64, description="only this alias or stage"),
    limit: Limit = 100,
    offset: Offset = 0,
) -> TransitionPage:
    rows, total = service.history(session, model, kind, of, limit, offset)
    return TransitionPage(
        items=[TransitionRead.model_validate(r, from_attributes=True) for r in rows],
        **page_fields(total, limit, offset),
    )


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True  # "any current representation", and there always is one
    return etag.strip('"') in ENTITY_TAG.findall(if_none_match)


@feed.get(
    "",
    response_model=None,
    responses=STATE_RESPONSES,
    summary="Where every alias and stage of some models points, with an ETag to poll cheaply",
    description=f"Send the last ETag in `If-None-Match`: the answer is `304 Not Modified` with no "
    f"body until an alias or stage of the named models moves. At most {MAX_MODELS:,} `model` "
    f"names; the answer holds at most {MAX_ROWS:,} aliases and stages together (more is a 422 "
    "ALIAS_STATE_TOO_LARGE: name the models wanted).",
)
def alias_state(session: SessionDep, models: ModelsQuery = [], if_none_match: IfNoneMatch = None) -> Response:
    body, etag = service.alias_state(session, sorted(set(models)))
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


# the feed first: the app includes this one router
router = APIRouter()
router.include_router(feed)
router.include_router(per_model)
