"""Typed results returned by the clients (unknown fields are kept, so newer servers still parse)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class _Result(BaseModel):
    model_config = ConfigDict(extra="allow")


class Artifact(_Result):
    path: str
    size_bytes: int
    sha256: str
    created_at: datetime


class ModelVersion(_Result):
    name: str
    version: str
    framework: str
    format: str
    stage: str
    status: str
    description: str | None = None
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}
    tags: list[str] = []
    signature: dict[str, Any] | None = None
    lineage: dict[str, Any] = {}
    aliases: list[str] = []
    size_bytes: int = 0
    sha256: str | None = None
    artifacts: list[Artifact] = []
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    download_url: str | None = None


class RegisteredModel(_Result):
    name: str
    description: str | None = None
    tags: list[str] = []
    aliases: dict[str, str] = {}
    latest_version: str | None = None
    version_count: int = 0
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    versions: list[ModelVersion] | None = None


class Alias(_Result):
    name: str
    alias: str
    version: str
    updated_at: datetime
    updated_by: str | None = None


class StageEntry(_Result):
    """One version in a stage other than None."""

    name: str
    stage: str
    version: str


class AliasState(_Result):
    """Where every alias and stage of some models points (`RegistryClient.alias_state`), and the
    ETag to send next time to learn, cheaply, whether any of it moved."""

    aliases: list[Alias]
    stages: list[StageEntry]
    etag: str

    def version_of(self, name: str, alias: str) -> str | None:
        """The version `name@alias` points at, or None if the alias is not set."""
        return next((a.version for a in self.aliases if a.name == name and a.alias == alias), None)

    def in_stage(self, name: str, stage: str) -> list[str]:
        """The versions of `name` in `stage` (e.g. "Production"), oldest first."""
        return [s.version for s in self.stages if s.name == name and s.stage == stage]


class Transition(_Result):
    id: int
    event_id: str
    kind: str
    name: str
    version: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    action: str
    actor: str
    comment: str | None = None
    at: datetime


class Lineage(_Result):
    name: str
    version: str
    lineage: dict[str, Any]
    parent: dict[str, Any] | None = None
    children: list[str] = []


class Page(_Result, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None
