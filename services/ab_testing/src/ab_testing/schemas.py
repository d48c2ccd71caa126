"""Request bodies of the experiments API, validated before anything is stored."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$"  # variants and metrics
# what one request may store: every string and list has a documented bound (OpenAPI shows them)
USER_ID_MAX = 200
REF_MAX = 100  # an experiment's key (or id) where one is referred to
TEXT_MAX = 10_000  # descriptions, hypotheses
MAX_VARIANTS = 100
MAX_METRICS = 100
MAX_ROUTE_BATCH = 10_000
MAX_EXPOSURES = 100_000
MAX_EVENTS = 100_000

UserId = Annotated[str, StringConstraints(min_length=1, max_length=USER_ID_MAX)]
ExperimentRef = Annotated[str, StringConstraints(min_length=1, max_length=REF_MAX)]
MetricName = Annotated[str, StringConstraints(max_length=100, pattern=NAME_PATTERN)]


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, pattern=NAME_PATTERN)
    weight: float = Field(ge=0, le=1)
    model_version: str | None = Field(default=None, max_length=100)
    description: str = Field(default="", max_length=1000)


class MetricIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, pattern=NAME_PATTERN)
    type: Literal["binary", "continuous", "ratio"] = "binary"
    direction: Literal["higher", "lower"] = "higher"
    numerator: MetricName | None = None
    denominator: MetricName | None = None
    zero_fill: bool | None = Field(
        default=None,
        description="count exposed users without events as 0 (default: on for binary, off otherwise)",
    )

    @model_validator(mode="after")
    def _check(self) -> MetricIn:
        if self.type == "ratio":
            if not self.numerator or not self.denominator:
                raise ValueError(f"ratio metric {self.name!r} needs 'numerator' and 'denominator' metrics")
        elif self.numerator or self.denominator:
            raise ValueError(f"only ratio metrics have a numerator and denominator ({self.name!r})")
        if self.zero_fill is None:
            self.zero_fill = self.type == "binary"
        return self


class NamespaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    range: tuple[float, float]

    @field_validator("range")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        start, end = value
        if not (0 <= start < end <= 1):
            raise ValueError("a namespace range is [start, end) with 0 <= start < end <= 1")
        return value


class BanditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    burn_in_users: int = Field(default=1000, ge=0, le=10**9)
    update_seconds: float = Field(default=3600.0, gt=0, le=365 * 86400)
    min_weight: float = Field(default=0.05, ge=0, lt=0.5)
    metric: MetricName | None = None


class CanaryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str | None = Field(default=None, min_length=1, max_length=200)
    baseline_version: str | None = Field(default=None, min_length=1, max_length=100)
    candidate_version: str | None = Field(default=None, min_length=1, max_length=100)
    stages: list[float] = Field(
        default_factory=lambda: [5.0, 10.0, 25.0, 50.0, 100.0], min_length=1, max_length=100
    )
    stage_seconds: float = Field(default=3600.0, gt=0, le=365 * 86400)
    alias: str = Field(default="production", max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
    min_samples: int = Field(
        default=200, ge=1, le=10**9, description="users per variant before a stage may advance"
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in value) or value != sorted(value):
            raise ValueError("stages are increasing percentages in (0, 100]")
        if value[-1] != 100:
            value = [*value, 100.0]
        return value


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(default=None, max_length=100, pattern=KEY_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str = Field(default="", max_length=TEXT_MAX)
    hypothesis: str = Field(default="", max_length=TEXT_MAX)
    variants: list[VariantIn] = Field(max_length=MAX_VARIANTS)
    model_name: str | None = Field(default=None, min_length=1, max_length=200)
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_METRICS)
    primary_metric: MetricName | None = None
    guardrail_metrics: list[MetricName] = Field(default_factory=list, max_length=MAX_METRICS)
    minimum_detectable_effect: float | None = Field(default=None, gt=0)
    significance_level: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    coverage: float = Field(default=1.0, gt=0, le=1)
    seed: str | None = Field(default=None, max_length=200)
    namespace: NamespaceIn | None = None
    mode: Literal["ab", "bandit", "canary"] = "ab"
    bandit: BanditIn | None = None
    canary: CanaryIn | None = None

    @model_validator(mode="after")
    def _check(self) -> ExperimentCreate:
        if not self.key and not self.name:
            raise ValueError("an experiment needs a 'key' (or a 'name' to derive it from)")
        if self.key is None:
            import re

            self.key = re.sub(r"[^A-Za-z0-9_.:-]+", "_", str(self.name))[:100]
        self.name = self.name or self.key
        check_variants(self.variants)
        names = {m.name for m in self.metrics}
        if len(names) != len(self.metrics):
            raise ValueError("metric names must be unique")
        for m in self.metrics:
            for part in (m.numerator, m.denominator):
                if part and part in names and next(x for x in self.metrics if x.name == part).type == "ratio":
                    raise ValueError(f"ratio metric {m.name!r} cannot be built from another ratio metric")
        for name in [self.primary_metric, *self.guardrail_metrics]:
            if name is not None and name not in names:
                raise ValueError(f"metric {name!r} is not among the experiment's metrics {sorted(names)}")
        if self.mode == "canary":
            self.canary = self.canary or CanaryIn()
            if len(self.variants) != 2:
                raise ValueError(
                    "a canary has exactly two variants: the baseline first, the candidate second"
                )
        if self.mode == "bandit":
            self.bandit = self.bandit or BanditIn()
            if not (self.bandit.metric or self.primary_metric):
                raise ValueError("a bandit needs a metric to optimise: 'primary_metric' or 'bandit.metric'")
        return self


def check_variants(variants: list[VariantIn]) -> None:
    if len(variants) < 2:
        raise ValueError(f"an experiment needs at least 2 variants, got {len(variants)}")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique: {names}")
    total = math.fsum(v.weight for v in variants)
    if abs(total - 1.0) > 0.01:
        raise ValueError(f"variant weights must sum to 1 (±0.01); they sum to {total:g}")


class ExperimentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=TEXT_MAX)
    hypothesis: str | None = Field(default=None, max_length=TEXT_MAX)
    variants: list[VariantIn] | None = Field(default=None, max_length=MAX_VARIANTS)
    coverage: float | None = Field(default=None, gt=0, le=1)
    reassign: bool = Field(default=False, description="re-randomize users in the new phase (a new seed)")

    @model_validator(mode="after")
    def _check(self) -> ExperimentUpdate:
        if self.variants is not None:
            check_variants(self.variants)
        return self


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value
