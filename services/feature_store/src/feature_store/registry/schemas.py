"""Request and response bodies of the registry: entities, feature sets and their schema
versions, feature services."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from mlops_kit.bounds import MAX_DURATION_SECONDS, NO_NUL, DurationSeconds, Tags
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feature_store.types import TYPES, normalize_type

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
NAME_RULE = "1-128 characters: letters, digits, '_' and '-', not starting with a digit or '-'"
FEATURE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
FEATURE_RULE = "1-128 characters: letters, digits and '_', not starting with a digit"
# columns every row may carry besides features (never a feature name)
RESERVED_COLUMNS = frozenset({"event_timestamp", "created_timestamp", "entity"})

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_PATTERN, description=NAME_RULE)]
Text = Annotated[str, NO_NUL]
# '24h', '7d', 3600: at most 100 years (0 or null: never expires)
Ttl = Annotated[str, Field(max_length=32)] | DurationSeconds
TtlText = Annotated[Ttl, Field(description="a duration like '24h', '7d', or seconds; at most 100 years")]
_DURATION = re.compile(r"^\s*(\d{1,12})\s*(s|m|h|d|w)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_ttl(value: Any) -> int | None:
    """Seconds: an int, or text like `3600`, `90m`, `24h`, `7d`, `2w`. None or 0: never expires."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("ttl must be seconds (an int) or a duration like '24h', '7d'")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = int(match.group(1)) * _UNIT[match.group(2)]
    else:
        raise ValueError(f"ttl must be seconds (an int) or a duration like '24h', '7d'; got {value!r}")
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"ttl must be between 0 and {MAX_DURATION_SECONDS} seconds (100 years)")
    return seconds or None


class EntityCreate(Strict):
    name: Name
    join_keys: list[Annotated[str, Field(min_length=1, max_length=128, pattern=FEATURE_PATTERN)]] | None = (
        Field(default=None, min_length=1, max_length=8, description="default: [name]")
    )
    value_type: Literal["string", "int"] = "string"
    description: Text = Field(default="", max_length=10_000)
    tags: Tags = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys(self) -> EntityCreate:
        if self.join_keys is None:
            if not re.match(FEATURE_PATTERN, self.name):
                raise ValueError(f"name {self.name!r} is not a valid join key: give join_keys")
            self.join_keys = [self.name]
        if len(set(self.join_keys)) != len(self.join_keys):
            raise ValueError("join_keys must be distinct")
        reserved = RESERVED_COLUMNS.intersection(self.join_keys)
        if reserved:
            raise ValueError(f"join keys may not be named {sorted(reserved)}")
        return self


class EntityUpdate(Strict):
    description: Text | None = Field(default=None, max_length=10_000)
    tags: Tags | None = None


class EntityRead(BaseModel):
    name: str
    join_keys: list[str]
    value_type: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime


class EntityPage(BaseModel):
    items: list[EntityRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FeatureIn(Strict):
    name: Annotated[
        str, Field(min_length=1, max_length=128, pattern=FEATURE_PATTERN, description=FEATURE_RULE)
    ]
    type: str = Field(max_length=32, description=f"one of {', '.join(TYPES)}")
    description: Text = Field(default="", max_length=2000)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        canonical = normalize_type(value)
        if canonical is None:
            raise ValueError(f"unknown type {value!r}: use one of {', '.join(TYPES)}")
        return canonical

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in RESERVED_COLUMNS:
            raise ValueError(f"{value!r} is a reserved column name")
        return value


Features = Annotated[list[FeatureIn], Field(min_length=1, max_length=1000)]


def _distinct(features: list[FeatureIn]) -> list[FeatureIn]:
    names = [f.name for f in features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feature names {duplicates}")
    return features


class FeatureSetCreate(Strict):
    name: Name
    entity: Name | None = Field(
        default=None, description="entity name; omitted: the `default` entity (join key `entity_id`)"
    )
    features: Features
    description: Text = Field(default="", max_length=10_000)
    owner: Text | None = Field(default=None, max_length=256)
    tags: Tags = Field(default_factory=dict)
    ttl_seconds: DurationSeconds | None = Field(default=None, description="0 or null: values never expire")
    ttl: TtlText | None = Field(default=None, description="alternative to ttl_seconds: '24h', '7d', 3600")

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[FeatureIn]) -> list[FeatureIn]:
        return _distinct(value)

    @model_validator(mode="after")
    def _ttl(self) -> FeatureSetCreate:
        if self.ttl is not None:
            if self.ttl_seconds is not None:
                raise ValueError("give ttl or ttl_seconds, not both")
            self.ttl_seconds = parse_ttl(self.ttl)
        self.ttl_seconds = self.ttl_seconds or None
        return self


class FeatureSetApply(Strict):
    """PUT: create the feature set, or bring it to this definition (a new schema version when
    the features changed; removing or retyping a feature needs `breaking: true`)."""

    entity: Name | None = None
    features: Features
    description: Text | None = Field(default=None, max_length=10_000)
    owner: Text | None = Field(default=None, max_length=256)
    tags: Tags | None = None
    ttl_seconds: DurationSeconds | None = None
    ttl: TtlText | None = None
    breaking: bool = False

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[FeatureIn]) -> list[FeatureIn]:
        return _distinct(value)

    @model_validator(mode="after")
    def _ttl(self) -> FeatureSetApply:
        if self.ttl is not None:
            if self.ttl_seconds is not None:
                raise ValueError("give ttl or ttl_seconds, not both")
            self.ttl_seconds = parse_ttl(self.ttl)
        return self


class FeatureSetUpdate(Strict):
    description: Text | None = Field(default=None, max_length=10_000)
    owner: Text | None = Field(default=None, max_length=256)
    tags: Tags | None = None
    ttl_seconds: DurationSeconds | None = Field(default=None, description="0 removes the TTL")
    ttl: TtlText | None = None

    @model_validator(mode="after")
    def _ttl(self) -> FeatureSetUpdate:
        if self.ttl is not None:
            if self.ttl_seconds is not None:
                raise ValueError("give ttl or ttl_seconds, not both")
            self.ttl_seconds = parse_ttl(self.ttl) or 0
        return self


class VersionCreate(Strict):
    features: Features = Field(description="the whole new feature list")
    breaking: bool = Field(
        default=False, description="allow removing features or changing their type (a breaking version)"
    )
    change: Text = Field(default="", max_length=2000, description="what changed, for the history")

    @field_validator("features")
    @classmethod
    def _features(cls, value: list[FeatureIn]) -> list[FeatureIn]:
        return _distinct(value)


class FeatureOut(BaseModel):
    name: str
    type: str
    description: str = ""


class VersionRead(BaseModel):
    feature_set: str
    version: int
    features: list[FeatureOut]
    breaking: bool
    change: str
    created_at: datetime


class FeatureSetRead(BaseModel):
    name: str
    entity: str
    join_keys: list[str]
    description: str
    owner: str | None
    tags: dict[str, str]
    ttl_seconds: int | None
    version: int = Field(description="the version shown (the latest unless ?version= asked another)")
    latest_version: int
    features: list[FeatureOut]
    versions: list[int]
    materialized_until: str | None
    created_at: datetime
    updated_at: datetime


class FeatureSetPage(BaseModel):
    items: list[FeatureSetRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class FeatureServiceCreate(Strict):
    name: Name
    features: list[Annotated[str, Field(max_length=300), NO_NUL]] = Field(
        min_length=1,
        max_length=10_000,
        description="`set:feature`, `set:*`, or a feature name unique across sets",
    )
    description: Text = Field(default="", max_length=10_000)
    tags: Tags = Field(default_factory=dict)


class FeatureRef(BaseModel):
    feature_set: str
    feature: str
    version: int = Field(description="the feature set's schema version when this service version was made")
    type: str


class FeatureServiceRead(BaseModel):
    name: str
    version: int
    features: list[FeatureRef]
    description: str
    tags: dict[str, str]
    created_at: datetime


class FeatureServicePage(BaseModel):
    items: list[FeatureServiceRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None
