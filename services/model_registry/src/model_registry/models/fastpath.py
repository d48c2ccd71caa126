"""The hot read path: one version by number, 'latest' or alias, for applications and the A/B service.

Prebuilt Core statements on one pooled connection and one thread hop; the JSON is rendered from
rows directly. The output is exactly `ModelVersionRead` (the tests hold both paths to that).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select

from model_registry.tables import Alias, Artifact, ModelVersion, RegisteredModel
from model_registry.types import iso_utc

_COLUMNS = (
    ModelVersion.id,
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
_BY_VERSION = select(*_COLUMNS).where(
    ModelVersion.model_id == bindparam("model_id"), ModelVersion.version == bindparam("version")
)
_LATEST = (
    select(*_COLUMNS)
    .where(ModelVersion.model_id == bindparam("model_id"))
    .order_by(ModelVersion.seq.desc())
    .limit(1)
)
_BY_ALIAS = (
    select(*_COLUMNS)
    .join(Alias, Alias.version_id == ModelVersion.id)
    .where(Alias.model_id == bindparam("model_id"), Alias.alias == bindparam("alias"))
)
_ALIASES = select(Alias.alias).where(Alias.version_id == bindparam("vid")).order_by(Alias.alias)
_ARTIFACTS = (
    select(Artifact.path, Artifact.size_bytes, Artifact.sha256, Artifact.created_at)
    .where(Artifact.version_id == bindparam("vid"))
    .order_by(Artifact.path)
)


def model_id(conn: Connection, name: str) -> int | None:
    return conn.execute(_MODEL, {"name": name}).scalar()


def version_row(conn: Connection, mid: int, version: str) -> Any:
    if version.startswith("@"):
        return conn.execute(_BY_ALIAS, {"model_id": mid, "alias": version[1:]}).first()
    if version == "latest":
        return conn.execute(_LATEST, {"model_id": mid}).first()
    return conn.execute(_BY_VERSION, {"model_id": mid, "version": version}).first()


def render(conn: Connection, name: str, row: Any) -> bytes:
    vid = row.id
    aliases = list(conn.execute(_ALIASES, {"vid": vid}).scalars())
    artifacts = [
        {"path": a.path, "size_bytes": a.size_bytes, "sha256": a.sha256, "created_at": iso_utc(a.created_at)}
        for a in conn.execute(_ARTIFACTS, {"vid": vid})
    ]
    body = {
        "name": name,
        "version": row.version,
        "framework": row.framework,
        "format": row.format,
        "stage": row.stage,
        "status": row.status,
        "description": row.description,
        "metrics": row.metrics or {},
        "params": row.params or {},
        "tags": row.tags or [],
        "signature": row.signature,
        "lineage": row.lineage or {},
        "aliases": aliases,
        "size_bytes": row.size_bytes,
        "sha256": row.sha256,
        "artifacts": artifacts,
        "created_at": iso_utc(row.created_at),
        "updated_at": iso_utc(row.updated_at),
        "created_by": row.created_by,
        "download_url": f"/api/models/{name}/versions/{row.version}/download",
    }
    return orjson.dumps(body)
