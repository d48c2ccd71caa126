"""Load-or-404 dependencies shared by the registry's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from mlops_kit.auth import Principal
from mlops_kit.bounds import NUL_FREE
from mlops_kit.deps import SessionDep, is_read
from sqlalchemy.orm import Session

from model_registry.aliases import service as aliases
from model_registry.models import service
from model_registry.tables import ModelVersion, RegisteredModel

NamePath = Annotated[str, Path(max_length=128, pattern=NUL_FREE, description="model name")]
VersionPath = Annotated[
    str, Path(max_length=65, pattern=NUL_FREE, description="version, 'latest', or '@alias'")
]


def actor(request: Request) -> str:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.name if principal else "anonymous"


def _model(name: NamePath, request: Request, session: SessionDep) -> RegisteredModel:
    # every write to a model (stages, aliases, tags, deletes) runs under the model's lock, taken
    # before anything is read, so two replicas never both act on the same stale view
    if not is_read(request):
        service.lock_model(session, name)
    return service.load_model(session, name)


ModelDep = Annotated[RegisteredModel, Depends(_model)]


def find_version(session: Session, model: RegisteredModel, version: str) -> ModelVersion:
    if version.startswith("@"):
        return aliases.resolve(session, model, version[1:])
    service.check_version_string(version)
    return service.load_version(session, model, version)


def resolve_version(session: Session, name: str, version: str) -> tuple[RegisteredModel, ModelVersion]:
    model = service.load_model(session, name)
    return model, find_version(session, model, version)


def _version(model: ModelDep, version: VersionPath, session: SessionDep) -> ModelVersion:
    return find_version(session, model, version)


VersionDep = Annotated[ModelVersion, Depends(_version)]
ActorDep = Annotated[str, Depends(actor)]
