"""What the experiments API takes and answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ab_testing.schemas import ExperimentCreate, ExperimentUpdate

__all__ = [
    "DecisionPage",
    "DecisionRead",
    "DefinitionRead",
    "ExperimentCreate",
    "ExperimentPage",
    "ExperimentRead",
    "ExperimentUpdate",
    "OverrideCreate",
    "OverrideRead",
    "Page",
    "PhasePage",
    "PhaseRead",
]


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ExperimentRead(BaseModel):
    id: str
    key: str
    name: str
    description: str
    hypothesis: str
    status: str
    mode: str
    model_name: str | None
    variants: list[dict[str, Any]]
    control: str
    metrics: list[dict[str, Any]]
    primary_metric: str | None
    guardrail_metrics: list[str]
    minimum_detectable_effect: float | None
    significance_level: float
    power: float
    coverage: float
    seed: str
    namespace: dict[str, Any] | None
    phase: int
    bandit: dict[str, Any] | None
    canary: dict[str, Any] | None
    created_at: str
    updated_at: str
    started_at: str | None
    stopped_at: str | None


class ExperimentPage(Page):
    items: list[ExperimentRead]


class DefinitionRead(BaseModel):
    key: str
    id: str
    seed: str
    status: str
    rollout: str | None
    phase: int
    coverage: float
    namespace: dict[str, Any] | None
    variants: list[dict[str, Any]]
    overrides: dict[str, str]
    hash_version: int


class PhaseRead(BaseModel):
    number: int
    seed: str
    variants: list[dict[str, Any]]
    coverage: float
    reason: str | None
    started_at: str
    ended_at: str | None


class PhasePage(Page):
    items: list[PhaseRead]


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=100)


class OverrideRead(BaseModel):
    experiment: str
    user_id: str
    variant: str


class DecisionRead(BaseModel):
    id: int
    kind: str
    phase: int
    details: dict[str, Any]
    at: str | None


class DecisionPage(Page):
    items: list[DecisionRead]
