from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response
from mlops_kit.deps import DatabaseDep, SessionDep
from mlops_kit.pagination import Limit, Offset, page_fields

from model_registry.aliases import repository as repo
from model_registry.aliases import service
from model_registry.deps import ActorDep, AliasPath, ModelDep, NamePath, VersionDep
from model_registry.models import service as models
from model_registry.models.schemas import (
    AliasRead,
    AliasSet,
    ModelVersionRead,
    StageTransition,
    TransitionPage,
    TransitionRead,
)
from model_registry.tables import Alias, RegisteredModel
from model_registry.types import Stage, check_alias

router = APIRouter(prefix="/api/models/{name}", tags=["aliases and stages"])


def _alias(alias: str) -> str:
    try:
        return check_alias(alias)
    except ValueError as exc:
        from mlops_kit.errors import Unprocessable

        raise Unprocessable(str(exc), code="INVALID_ALIAS") from None


def _read(model: RegisteredModel, row: Alias, version: str) -> AliasRead:
    return AliasRead(
        name=model.name,
        alias=row.alias,
        version=version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


@router.get("/aliases", response_model=list[AliasRead], summary="List a model's aliases")
def list_aliases(model: ModelDep, session: SessionDep) -> list[AliasRead]:
    return [_read(model, row, version) for row, version in repo.list_aliases(session, model.id)]


@router.get("/aliases/{alias}", response_model=ModelVersionRead, summary="Resolve name@alias")
async def resolve_alias(name: NamePath, alias: AliasPath, db: DatabaseDep) -> Response:
    body = await models.read_version_json(db, name, f"@{alias}")
    return Response(body, media_type="application/json")


@router.put("/aliases/{alias}", response_model=AliasRead, summary="Set or move an alias")
def set_alias(
    model: ModelDep, alias: AliasPath, body: AliasSet, session: SessionDep, who: ActorDep
) -> AliasRead:
    target = models.load_version(session, model, body.version)
    row = service.set_alias(session, model, _alias(alias), target, who, body.comment)
    return _read(model, row, target.version)


@router.delete("/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(model: ModelDep, alias: AliasPath, session: SessionDep, who: ActorDep) -> None:
    service.delete_alias(session, model, alias, who)


@router.post(
    "/aliases/{alias}/rollback",
    response_model=AliasRead | None,
    summary="Point the alias back at its previous target",
)
def rollback_alias(model: ModelDep, alias: AliasPath, session: SessionDep, who: ActorDep) -> AliasRead | None:
    row = service.rollback_alias(session, model, alias, who)
    if row is None:
        return None
    return _read(model, row, service.resolve(session, model, alias).version)


@router.post(
    "/versions/{version}/stage",
    response_model=ModelVersionRead,
    summary="Move a version to a stage (None, Staging, Production, Archived)",
)
def transition(
    model: ModelDep, version: VersionDep, body: StageTransition, session: SessionDep, who: ActorDep
) -> ModelVersionRead:
    service.transition_stage(session, model, version, body.stage, body.archive_existing, who, body.comment)
    return models.version_read(session, model, version)


@router.post(
    "/stages/{stage}/rollback",
    response_model=list[str],
    summary="Undo the last transition into a stage; returns the versions moved back",
)
def rollback_stage(model: ModelDep, stage: Stage, session: SessionDep, who: ActorDep) -> list[str]:
    return service.rollback_stage(session, model, stage, who)


@router.get("/history", response_model=TransitionPage, summary="Who moved which alias or stage, when")
def history(
    model: ModelDep,
    session: SessionDep,
    kind: Literal["alias", "stage"] | None = None,
    of: str | None = Query(None, max_length=64, description="only this alias or stage"),
    limit: Limit = 100,
    offset: Offset = 0,
) -> TransitionPage:
    rows, total = repo.history(session, model.id, kind, of, limit, offset)
    return TransitionPage(
        items=[TransitionRead.model_validate(r, from_attributes=True) for r in rows],
        **page_fields(total, limit, offset),
    )
