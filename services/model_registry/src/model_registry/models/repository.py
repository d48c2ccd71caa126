"""Every SQL statement about models and versions. Flushes, never commits."""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import Database, count_rows
from mlops_kit.orm import dialect_insert
from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from model_registry.tables import (
    Alias,
    Artifact,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    VersionMetric,
    VersionTag,
)

OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}


@dataclass
class VersionFilter:
    tags: list[str] = field(default_factory=list)
    framework: str | None = None
    stage: str | None = None
    metrics: list[tuple[str, str, float]] = field(default_factory=list)


def get_model(session: Session, name: str) -> RegisteredModel | None:
    return session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))


def lock_or_create_model(session: Session, name: str, description: str | None, actor: str) -> RegisteredModel:
    """Create the model row if missing, then lock it so version numbers are handed out in turn."""
    now = utcnow()
    stmt = (
        dialect_insert(session, RegisteredModel)
        .values(
            name=name,
            description=description,
            next_seq=1,
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    session.execute(stmt)
    model = session.scalar(
        select(RegisteredModel)
        .where(RegisteredModel.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert model is not None
    return model


def version_exists(session: Session, model_id: int, version: str) -> bool:
    return bool(
        session.scalar(
            select(exists().where(ModelVersion.model_id == model_id, ModelVersion.version == version))
        )
    )


def add_version(session: Session, version: ModelVersion) -> ModelVersion:
    session.add(version)
    session.flush()
    session.add_all(VersionTag(version_id=version.id, tag=t) for t in set(version.tags))
    session.add_all(VersionMetric(version_id=version.id, key=k, value=v) for k, v in version.metrics.items())
    session.flush()
    return version


def get_version(session: Session, model_id: int, version: str) -> ModelVersion | None:
    query = select(ModelVersion).where(ModelVersion.model_id == model_id)
    if version == "latest":
        query = query.order_by(ModelVersion.seq.desc()).limit(1)
    else:
        query = query.where(ModelVersion.version == version)
    return session.scalar(query)


def get_versions_by_id(session: Session, ids: Sequence[int]) -> dict[int, ModelVersion]:
    rows = session.scalars(select(ModelVersion).where(ModelVersion.id.in_(ids)))
    return {v.id: v for v in rows}


def _version_conditions(flt: VersionFilter, model_id_col: Any = None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if flt.framework:
        conds.append(ModelVersion.framework == flt.framework)
    if flt.stage:
        conds.append(ModelVersion.stage == flt.stage)
    for key, op, value in flt.metrics:
        conds.append(
            exists().where(
                VersionMetric.version_id == ModelVersion.id,
                VersionMetric.key == key,
                OPS[op](VersionMetric.value, value),
            )
        )
    for tag in flt.tags:
        tagged: ColumnElement[bool] = exists().where(
            VersionTag.version_id == ModelVersion.id, VersionTag.tag == tag
        )
        if model_id_col is not None:
            model_tagged = exists().where(ModelTag.model_id == model_id_col, ModelTag.tag == tag)
            tagged = or_(tagged, model_tagged)
        conds.append(tagged)
    return conds


def _page(session: Session, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    total = count_rows(session, query)
    return list(session.scalars(query.limit(limit).offset(offset))), total


def list_models(
    session: Session,
    *,
    name_prefix: str | None,
    flt: VersionFilter,
    order_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[RegisteredModel], int]:
    query = select(RegisteredModel)
    if name_prefix:
        escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(RegisteredModel.name.like(f"{escaped}%", escape="\\"))
    version_conds = _version_conditions(flt, RegisteredModel.id)
    if version_conds:
        query = query.where(exists().where(ModelVersion.model_id == RegisteredModel.id, *version_conds))
    column = {
        "name": RegisteredModel.name,
        "created_at": RegisteredModel.created_at,
        "updated_at": RegisteredModel.updated_at,
    }[order_by]
    query = query.order_by(column.desc() if descending else column.asc(), RegisteredModel.id)
    return _page(session, query, limit, offset)


def list_versions(
    session: Session,
    *,
    model_id: int,
    flt: VersionFilter,
    order_by: str,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[ModelVersion], int]:
    query = select(ModelVersion).where(ModelVersion.model_id == model_id, *_version_conditions(flt))
    if order_by.startswith("metric:"):
        key = order_by.removeprefix("metric:")
        metric = (
            select(VersionMetric.value)
            .where(VersionMetric.version_id == ModelVersion.id, VersionMetric.key == key)
            .scalar_subquery()
        )
        query = query.where(
            exists().where(VersionMetric.version_id == ModelVersion.id, VersionMetric.key == key)
        )
        query = query.order_by(metric.desc() if descending else metric.asc(), ModelVersion.seq.desc())
    else:
        column = {
            "version": ModelVersion.seq,
            "created_at": ModelVersion.created_at,
            "updated_at": ModelVersion.updated_at,
        }[order_by]
        query = query.order_by(column.desc() if descending else column.asc(), ModelVersion.id)
    return _page(session, query, limit, offset)


def model_summaries(session: Session, model_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """model id -> (version count, latest version)."""
    if not model_ids:
        return {}
    counts = {
        mid: n
        for mid, n in session.execute(
            select(ModelVersion.model_id, func.count())
            .where(ModelVersion.model_id.in_(model_ids))
            .group_by(ModelVersion.model_id)
        )
    }
    top = (
        select(ModelVersion.model_id, func.max(ModelVersion.seq).label("seq"))
        .where(ModelVersion.model_id.in_(model_ids))
        .group_by(ModelVersion.model_id)
        .subquery()
    )
    latest = {
        mid: version
        for mid, version in session.execute(
            select(ModelVersion.model_id, ModelVersion.version).join(
                top, and_(top.c.model_id == ModelVersion.model_id, top.c.seq == ModelVersion.seq)
            )
        )
    }
    return {mid: (counts.get(mid, 0), latest.get(mid)) for mid in model_ids}


def model_tags(session: Session, model_ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(ModelTag.model_id, ModelTag.tag).where(ModelTag.model_id.in_(model_ids)).order_by(ModelTag.tag)
    )
    for mid, tag in rows:
        out[mid].append(tag)
    return out


def set_model_tags(session: Session, model_id: int, tags: list[str]) -> None:
    session.execute(delete(ModelTag).where(ModelTag.model_id == model_id))
    session.add_all(ModelTag(model_id=model_id, tag=t) for t in dict.fromkeys(tags))
    session.flush()


def set_version_tags(session: Session, version: ModelVersion, tags: list[str]) -> None:
    version.tags = list(dict.fromkeys(tags))
    session.execute(delete(VersionTag).where(VersionTag.version_id == version.id))
    session.add_all(VersionTag(version_id=version.id, tag=t) for t in version.tags)
    session.flush()


def aliases_by_model(session: Session, model_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = defaultdict(dict)
    rows = session.execute(
        select(Alias.model_id, Alias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Alias.version_id)
        .where(Alias.model_id.in_(model_ids))
        .order_by(Alias.alias)
    )
    for mid, alias, version in rows:
        out[mid][alias] = version
    return out


def aliases_by_version(session: Session, version_ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(Alias.version_id, Alias.alias).where(Alias.version_id.in_(version_ids)).order_by(Alias.alias)
    )
    for vid, alias in rows:
        out[vid].append(alias)
    return out


def artifacts_by_version(session: Session, version_ids: Sequence[int]) -> dict[int, list[Artifact]]:
    out: dict[int, list[Artifact]] = defaultdict(list)
    rows = session.scalars(
        select(Artifact).where(Artifact.version_id.in_(version_ids)).order_by(Artifact.path)
    )
    for artifact in rows:
        out[artifact.version_id].append(artifact)
    return out


def children_of(session: Session, model_id: int, version: str) -> list[str]:
    rows = session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model_id).order_by(ModelVersion.seq)
    )
    return [v.version for v in rows if (v.lineage or {}).get("parent_version") == version]


def delete_version(session: Session, version: ModelVersion) -> None:
    session.execute(delete(Alias).where(Alias.version_id == version.id))
    session.delete(version)
    session.flush()


def delete_model(session: Session, model: RegisteredModel) -> None:
    session.delete(model)
    session.flush()


# ---- the hot read path: one statement per lookup, aliases and artifacts aggregated as JSON ----

_COLUMNS = (
    ModelVersion.version,
    ModelVersion.framework,
    ModelVersion.format,
    ModelVersion.stage,
    ModelVersion.status,
    ModelVersion.description,
    ModelVersion.metrics,
    ModelVersion.params,
    ModelVersion.tags,
    ModelVersion.signature,
    ModelVersion.lineage,
    ModelVersion.size_bytes,
    ModelVersion.sha256,
    ModelVersion.created_at,
    ModelVersion.updated_at,
    ModelVersion.created_by,
)
_MODEL = select(RegisteredModel.id).where(RegisteredModel.name == bindparam("name"))


@cache
def _statements(dialect: str) -> dict[str, Select[Any]]:
    if dialect == "sqlite":
        agg, obj = func.json_group_array, func.json_object
    else:
        agg, obj = func.json_agg, func.json_build_object
    # correlate to the version only: the alias lookup joins `aliases` in the outer query too
    aliases = (
        select(agg(Alias.alias))
        .where(Alias.version_id == ModelVersion.id)
        .correlate(ModelVersion)
        .scalar_subquery()
    )
    artifacts = (
        select(
            agg(
                obj(
                    "path",
                    Artifact.path,
                    "size_bytes",
                    Artifact.size_bytes,
                    "sha256",
                    Artifact.sha256,
                    "created_at",
                    Artifact.created_at,
                )
            )
        )
        .where(Artifact.version_id == ModelVersion.id)
        .scalar_subquery()
    )
    base = (
        select(*_COLUMNS, aliases.label("aliases"), artifacts.label("artifacts"))
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.name == bindparam("name"))
    )
    return {
        "version": base.where(ModelVersion.version == bindparam("version")),
        "latest": base.order_by(ModelVersion.seq.desc()).limit(1),
        "alias": base.join(Alias, Alias.version_id == ModelVersion.id).where(
            Alias.alias == bindparam("alias")
        ),
    }


def _lookup(dialect: str, name: str, version: str) -> tuple[Select[Any], dict[str, str]]:
    statements = _statements(dialect)
    if version.startswith("@"):
        return statements["alias"], {"name": name, "alias": version[1:]}
    if version == "latest":
        return statements["latest"], {"name": name}
    return statements["version"], {"name": name, "version": version}


async def version_row(db: Database, name: str, version: str) -> tuple[Any, bool]:
    """The hot path's lookup of one version by number, 'latest' or '@alias': (row or None, whether
    the model exists), one round trip when the version is there. On SQLite it runs on the event
    loop: a local WAL read that never waits for writers and takes a fraction of a millisecond, far
    less than a thread hand-off. On PostgreSQL it runs on the async (psycopg) engine."""
    stmt, params = _lookup(db.reader.dialect.name, name, version)
    if db.async_reader is None:
        with db.reader.connect() as conn:
            row = conn.execute(stmt, params).first()
            model_found = row is not None or conn.execute(_MODEL, {"name": name}).first() is not None
        return row, model_found
    async with db.async_reader.connect() as aconn:
        row = (await aconn.execute(stmt, params)).first()
        model_found = row is not None or (await aconn.execute(_MODEL, {"name": name})).first() is not None
    return row, model_found
