"""Business rules for models and versions. Framework-free; raises domain errors."""

from __future__ import annotations

import re
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import Database, lock_key
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from model_registry.errors import (
    AliasNotFound,
    InvalidFilter,
    InvalidName,
    ModelNotFound,
    ModelVersionExists,
    ModelVersionNotFound,
)
from model_registry.models import fastpath
from model_registry.models import repository as repo
from model_registry.models.schemas import (
    LineageRead,
    ModelRead,
    ModelUpdate,
    ModelVersionRead,
    VersionFields,
    version_fields,
)
from model_registry.tables import ModelVersion, RegisteredModel
from model_registry.types import NAME_RE, NAME_RULE, VERSION_RE, default_format

METRIC_FILTER = re.compile(r"^\s*([A-Za-z0-9_.\-/]{1,128})\s*(>=|<=|!=|==|>|<|=)\s*(-?[0-9.eE+\-]+)\s*$")
VERSION_ORDERS = ("version", "created_at", "updated_at")
MODEL_ORDERS = ("name", "created_at", "updated_at")


def parse_metric_filters(raw: list[str]) -> list[tuple[str, str, float]]:
    out = []
    for item in raw:
        for part in item.split(","):
            if not part.strip():
                continue
            match = METRIC_FILTER.match(part)
            if not match:
                raise InvalidFilter(
                    f"bad metric filter {part!r}: use <metric><op><number>, op one of "
                    "> >= < <= = !=, e.g. accuracy>0.9"
                )
            try:
                value = float(match.group(3))
            except ValueError:
                raise InvalidFilter(f"bad number in metric filter {part!r}") from None
            out.append((match.group(1), match.group(2), value))
    return out


def parse_tags(raw: list[str]) -> list[str]:
    return [t.strip() for item in raw for t in item.split(",") if t.strip()]


def parse_order(order_by: str, allowed: tuple[str, ...]) -> tuple[str, bool]:
    key, descending = order_by, False
    if key.startswith("-"):
        key, descending = key[1:], True
    elif " " in key:
        key, _, direction = key.partition(" ")
        descending = direction.strip().lower() == "desc"
    if key not in allowed and not (key.startswith("metric:") and "version" in allowed):
        raise InvalidFilter(
            f"cannot order by {key!r}; use one of {', '.join(allowed)}"
            + (" or metric:<name>" if "version" in allowed else "")
            + " with an optional leading '-' for descending"
        )
    return key, descending


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidName(f"invalid model name {name[:80]!r}: {NAME_RULE}")
    return name


def lock_model(session: Session, name: str) -> None:
    """Serialize this transaction with every other write to the model `name` (until it ends)."""
    lock_key(session, "registry.model", name)


def load_model(session: Session, name: str) -> RegisteredModel:
    check_name(name)
    model = repo.get_model(session, name)
    if model is None:
        raise ModelNotFound(f"model {name!r} does not exist", {"name": name})
    return model


def load_version(session: Session, model: RegisteredModel, version: str) -> ModelVersion:
    found = repo.get_version(session, model.id, version)
    if found is None:
        raise ModelVersionNotFound(
            f"model {model.name!r} has no version {version!r}", {"name": model.name, "version": version}
        )
    return found


def register_version(
    session: Session,
    name: str,
    fields: VersionFields,
    actor: str,
    model_description: str | None = None,
) -> tuple[RegisteredModel, ModelVersion]:
    lock_model(session, name)
    model = repo.lock_or_create_model(session, name, model_description, actor)
    lineage = fields.lineage.model_dump(exclude_none=True)
    for key in ("run_id", "experiment_id", "parent_version"):
        if getattr(fields, key) is not None:
            lineage[key] = getattr(fields, key)
    parent = lineage.get("parent_version")
    if parent is not None and not repo.version_exists(session, model.id, parent):
        raise ModelVersionNotFound(
            f"parent version {parent!r} of model {name!r} does not exist",
            {"name": name, "parent_version": parent},
        )
    seq = model.next_seq
    version = fields.version
    if version is None:
        while repo.version_exists(session, model.id, str(seq)):
            seq += 1
        version = str(seq)
    elif repo.version_exists(session, model.id, version):
        raise ModelVersionExists(
            f"model {name!r} already has version {version!r}", {"name": name, "version": version}
        )
    model.next_seq = seq + 1
    now = utcnow()
    model.updated_at = now
    if model_description and not model.description:
        model.description = model_description
    row = ModelVersion(
        model_id=model.id,
        version=version,
        seq=seq,
        framework=fields.framework,
        format=fields.format or default_format(fields.framework),
        stage="None",
        status="registered",
        description=fields.description,
        metrics=dict(fields.metrics),
        params=_jsonable(fields.params),
        tags=list(dict.fromkeys(fields.tags)),
        signature=fields.signature.model_dump(exclude_none=True) if fields.signature else None,
        lineage=lineage,
        size_bytes=0,
        sha256=None,
        created_at=now,
        updated_at=now,
        created_by=actor,
    )
    try:
        repo.add_version(session, row)
    except IntegrityError as exc:
        raise ModelVersionExists(
            f"model {name!r} already has version {version!r}", {"name": name, "version": version}
        ) from exc
    return model, row


def list_models(
    session: Session,
    *,
    name_prefix: str | None,
    tags: list[str],
    framework: str | None,
    metric: list[str],
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[list[ModelRead], int]:
    flt = repo.VersionFilter(tags=parse_tags(tags), framework=framework, metrics=parse_metric_filters(metric))
    key, descending = parse_order(order_by, MODEL_ORDERS)
    rows, total = repo.list_models(
        session,
        name_prefix=name_prefix,
        flt=flt,
        order_by=key,
        descending=descending,
        limit=limit,
        offset=offset,
    )
    return model_reads(session, rows), total


def list_versions(
    session: Session,
    model: RegisteredModel,
    *,
    tags: list[str],
    framework: str | None,
    stage: str | None,
    metric: list[str],
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[list[ModelVersionRead], int]:
    flt = repo.VersionFilter(
        tags=parse_tags(tags), framework=framework, stage=stage, metrics=parse_metric_filters(metric)
    )
    key, descending = parse_order(order_by, VERSION_ORDERS)
    rows, total = repo.list_versions(
        session, model_id=model.id, flt=flt, order_by=key, descending=descending, limit=limit, offset=offset
    )
    return version_reads(session, model, rows), total


def model_with_versions(session: Session, name: str, versions_limit: int) -> ModelRead:
    """The model, with its newest `versions_limit` versions."""
    model = load_model(session, name)
    read = model_reads(session, [model])[0]
    rows, _ = repo.list_versions(
        session,
        model_id=model.id,
        flt=repo.VersionFilter(),
        order_by="version",
        descending=True,
        limit=versions_limit,
        offset=0,
    )
    read.versions = version_reads(session, model, rows)
    return read


def delete_model(session: Session, model: RegisteredModel) -> None:
    repo.delete_model(session, model)


def delete_version(session: Session, version: ModelVersion) -> None:
    repo.delete_version(session, version)


def lineage(session: Session, model: RegisteredModel, version: ModelVersion) -> LineageRead:
    parent = None
    parent_version = (version.lineage or {}).get("parent_version")
    if parent_version:
        found = repo.get_version(session, model.id, parent_version)
        parent = (
            {"name": model.name, "version": found.version, "sha256": found.sha256, "lineage": found.lineage}
            if found
            else {"name": model.name, "version": parent_version, "deleted": True}
        )
    return LineageRead(
        name=model.name,
        version=version.version,
        lineage=version.lineage or {},
        parent=parent,
        children=repo.children_of(session, model.id, version.version),
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in params.items()}


def update_model(session: Session, model: RegisteredModel, change: ModelUpdate) -> None:
    if change.description is not None:
        model.description = change.description
    if change.tags is not None:
        repo.set_model_tags(session, model.id, change.tags)
    model.updated_at = utcnow()
    session.flush()


def update_version(session: Session, version: ModelVersion, change: ModelUpdate) -> None:
    if change.description is not None:
        version.description = change.description
    if change.tags is not None:
        repo.set_version_tags(session, version, change.tags)
    version.updated_at = utcnow()
    session.flush()


def version_reads(
    session: Session, model: RegisteredModel, versions: list[ModelVersion]
) -> list[ModelVersionRead]:
    ids = [v.id for v in versions]
    aliases = repo.aliases_by_version(session, ids)
    artifacts = repo.artifacts_by_version(session, ids)
    return [_version_read(model.name, v, aliases.get(v.id, []), artifacts.get(v.id, [])) for v in versions]


def version_read(session: Session, model: RegisteredModel, version: ModelVersion) -> ModelVersionRead:
    return version_reads(session, model, [version])[0]


def _version_read(name: str, v: ModelVersion, aliases: list[str], artifacts: list[Any]) -> ModelVersionRead:
    files = [
        {"path": a.path, "size_bytes": a.size_bytes, "sha256": a.sha256, "created_at": a.created_at}
        for a in artifacts
    ]
    return ModelVersionRead(**version_fields(name, v, aliases, files))


def model_reads(session: Session, models: list[RegisteredModel]) -> list[ModelRead]:
    ids = [m.id for m in models]
    summaries = repo.model_summaries(session, ids)
    tags = repo.model_tags(session, ids)
    aliases = repo.aliases_by_model(session, ids)
    return [
        ModelRead(
            name=m.name,
            description=m.description,
            tags=tags.get(m.id, []),
            aliases=aliases.get(m.id, {}),
            latest_version=summaries[m.id][1],
            version_count=summaries[m.id][0],
            created_at=m.created_at,
            updated_at=m.updated_at,
            created_by=m.created_by,
        )
        for m in models
    ]


async def read_version_json(db: Database, name: str, version: str) -> bytes:
    """The hot path: a version (number, 'latest' or '@alias') as JSON, in one round trip."""
    check_name(name)
    if not version.startswith("@"):
        check_version_string(version)
    row, model_exists = await repo.version_row(db, name, version)
    if not model_exists:
        raise ModelNotFound(f"model {name!r} does not exist", {"name": name})
    if row is None and version.startswith("@"):
        raise AliasNotFound(
            f"model {name!r} has no alias {version[1:]!r}", {"name": name, "alias": version[1:]}
        )
    if row is None:
        raise ModelVersionNotFound(
            f"model {name!r} has no version {version!r}", {"name": name, "version": version}
        )
    return fastpath.render(name, row)


def check_version_string(version: str) -> None:
    if version != "latest" and not VERSION_RE.fullmatch(version):
        raise ModelVersionNotFound(f"no version {version[:80]!r}")
