"""The alias state feed: where every alias and stage of some models points, behind an ETag."""

from __future__ import annotations

from pydantic import BaseModel, Field

from model_registry.types import UtcDatetime

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
