"""Load-or-404 dependencies shared by the registry's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from mlops_kit.auth import Principal
from mlops_kit.deps import SessionDep, is_read
from sqlalchemy.orm import Session

from model_registry.aliases import service as aliases
from model_registry.models import service
from model_registry.tables import ModelVersion, RegisteredModel
from model_registry.types import ALIAS_RE, NAME_RE, VERSION_RE


def _either(*patterns: str) -> str:
    return "^(" + "|".join(p.removeprefix("^").removesuffix("$") for p in patterns) + ")$"


# the patterns document what the domain checks enforce (which answer in their own error codes)
NamePath = Annotated[
    str, Path(max_length=128, description="model name", json_schema_extra={"pattern": NAME_RE.pattern})
]
NameOrAliasPath = Annotated[
    str,
    Path(
        max_length=193,
        description="model name, or `name@alias` for the version the alias points at",
        json_schema_extra={
            "pattern": NAME_RE.pattern.removesuffix("$") + "(@" + ALIAS_RE.pattern[1:-1] + ")?$"
        },
    ),
]
VersionPath = Annotated[
    str,
    Path(
        max_length=65,
        description="version, 'latest', or '@alias'",
        json_schema_extra={"pattern": _either("^latest$", "^@" + ALIAS_RE.pattern[1:], VERSION_RE.pattern)},
    ),
]
AliasPath = Annotated[
    str, Path(max_length=64, description="alias", json_schema_extra={"pattern": ALIAS_RE.pattern})
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
