"""Typed results of the A/B testing client (unknown fields are kept, so newer servers still parse).

Assignments (`route`, `route_batch`, `LocalRouter.assign`) are `mlops_client.ab_routing.Assignment`,
the same type whether the service or the client evaluated them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_client.models import _Result

STATUSES = ("draft", "running", "paused", "stopped", "archived")


class AbVariant(_Result):
    name: str
    weight: float
    model_version: str | None = None
    description: str = ""


class AbMetric(_Result):
    name: str
    type: str = "binary"
    """binary, continuous or ratio."""
    direction: str = "higher"
    """Which way is better: higher or lower."""
    numerator: str | None = None
    denominator: str | None = None


class Namespace(_Result):
    name: str
    range: tuple[float, float]
    """Users whose namespace hash is in [start, end) may enter the experiment."""


class AbExperiment(_Result):
    id: str
    key: str
    name: str
    description: str = ""
    hypothesis: str = ""
    status: str
    """draft, running, paused, stopped or archived."""
    mode: str = "ab"
    """ab, bandit or canary."""
    model_name: str | None = None
    variants: list[AbVariant]
    control: str | None = None
    metrics: list[AbMetric] = []
    primary_metric: str | None = None
    guardrail_metrics: list[str] = []
    minimum_detectable_effect: float | None = None
    significance_level: float = 0.05
    power: float = 0.8
    coverage: float = 1.0
    seed: str | None = None
    namespace: Namespace | None = None
    phase: int = 1
    """The current phase: a change of variants or weights on a started experiment opens a new one."""
    bandit: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"


class Override(_Result):
    experiment: str
    user_id: str
    variant: str


class EventsResult(_Result):
    accepted: int = 0
    duplicates: int = 0
    """Events whose `event_id` was already stored (a retried request counts here)."""
    not_in_experiment: int = 0
    """Events without a variant from users the experiment does not include (not counted)."""


class Decision(_Result):
    id: int
    kind: str
    """e.g. bandit_update, canary_advance, canary_rollback, promote."""
    phase: int | None = None
    details: dict[str, Any] = {}
    """The evidence the decision was taken on."""
    at: datetime


class VariantResult(_Result):
    """One variant of one metric; the comparison fields are None for the control."""

    variant: str
    n: int = 0
    mean: float | None = None
    std: float | None = None
    lift: float | None = None
    """Relative lift over the control (0.05 = +5%)."""
    lift_ci: list[float] | None = None
    abs_lift: float | None = None
    abs_lift_ci: list[float] | None = None
    p_value: float | None = None
    test: str | None = None
    adjusted_p_value: float | None = None
    chance_to_win: float | None = None
    expected_loss: float | None = None


class MetricResult(_Result):
    metric: str
    type: str | None = None
    direction: str | None = None
    variants: list[VariantResult] = []


class ExperimentResults(_Result):
    experiment: str
    phase: int | None = None
    metrics: list[MetricResult] = []
    srm: dict[str, Any] | None = None
    """Sample-ratio-mismatch check of the users per variant against the weights."""

    def metric(self, name: str) -> MetricResult:
        for m in self.metrics:
            if m.metric == name:
                return m
        raise KeyError(f"no results for metric {name!r}; there are {[m.metric for m in self.metrics]}")


class PowerResult(_Result):
    """Required sample size per variant for an effect, or the detectable effect for a size."""

    sample_size_per_variant: int | None = None
    mde: float | None = None


class PromoteResult(_Result):
    experiment: str | None = None
    variant: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
