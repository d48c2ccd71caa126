"""Aliases, stages and their history; the alias state feed (where every alias and stage of some
models points, behind an ETag)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from model_registry.models.schemas import Strict, Text
from model_registry.types import AliasName, Stage, UtcDatetime, VersionStr

MAX_MODELS = 1000
MAX_ROWS = 10_000


class AliasEntry(BaseModel):
    name: str = Field(description="model name")
    alias: str
    version: str = Field(description="the version the alias points at")
    updated_at: UtcDatetime = Field(description="when the alias was last set or moved")


class StageEntry(BaseModel):
    name: str = Field(description="model name")
    stage: str = Field(description="Staging, Production or Archived (versions in stage None are left out)")
    version: str


class AliasStateRead(BaseModel):
    """Aliases sorted by (name, alias); stages by (name, stage, version number)."""

    aliases: list[AliasEntry] = Field(max_length=MAX_ROWS)
    stages: list[StageEntry] = Field(max_length=MAX_ROWS)


class StageTransition(BaseModel):
    model_config = Strict
    stage: Stage
    archive_existing: bool = Field(False, description="move other versions in this stage to Archived")
    comment: Text | None = Field(None, max_length=2000)


class AliasSet(BaseModel):
    model_config = Strict
    version: VersionStr
    comment: Text | None = Field(None, max_length=2000)


class AliasRead(BaseModel):
    name: str
    alias: AliasName
    version: str
    updated_at: UtcDatetime
    updated_by: str | None


class TransitionRead(BaseModel):
    id: int
    event_id: str
    kind: str
    name: str
    version: str | None
    from_value: str | None
    to_value: str | None
    action: str
    actor: str
    comment: str | None
    at: UtcDatetime


class TransitionPage(BaseModel):
    items: list[TransitionRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None
