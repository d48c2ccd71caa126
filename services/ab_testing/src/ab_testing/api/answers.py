"""What the A/B routes answer, for the OpenAPI (the routes build plain dicts on their hot paths)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ab_testing.experiments.schemas import (
    DecisionPage,
    DecisionRead,
    DefinitionRead,
    ExperimentPage,
    ExperimentRead,
    OverrideRead,
    Page,
    PhasePage,
    PhaseRead,
)

__all__ = [
    "Assignment",
    "AssignmentBatch",
    "DecisionPage",
    "DecisionRead",
    "DefinitionRead",
    "EventsAccepted",
    "ExperimentPage",
    "ExperimentPowerRead",
    "ExperimentRead",
    "ExposuresAccepted",
    "OverrideRead",
    "Page",
    "PhasePage",
    "PhaseRead",
    "PowerRead",
    "ResultsRead",
]


class Open(BaseModel):
    # analysis figures grow with the statistics offered: the named fields are the stable ones
    model_config = ConfigDict(extra="allow")


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
