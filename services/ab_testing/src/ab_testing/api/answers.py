"""What the A/B routes answer, for the OpenAPI (the routes build plain dicts on their hot paths)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    # analysis figures grow with the statistics offered: the named fields are the stable ones
    model_config = ConfigDict(extra="allow")


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


class Assignment(BaseModel):
    experiment: str
    user_id: str
    variant: str | None
    model_version: str | None
    in_experiment: bool
    phase: int | None
    hash: float | None
    reason: str


class AssignmentBatch(BaseModel):
    assignments: list[Assignment]


class ExposuresAccepted(BaseModel):
    accepted: int
    ignored: int


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int
    not_in_experiment: int


class ResultsRead(Open):
    experiment: str
    status: str
    phase: int
    control: str
    correction: str
    variants: list[dict[str, Any]]
    sample_ratio_mismatch: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    pending_events: int


class PowerRead(Open):
    metric_type: str
    baseline_mean: float
    alpha: float
    power: float
    variants: int


class ExperimentPowerRead(PowerRead):
    experiment: str
    metric: str


class EvaluationRead(Open):
    experiment: str
    mode: str
    status: str
