"""Typed results of the A/B testing client (unknown fields are kept, so newer servers still parse).

Assignments (`route`, `route_batch`, `LocalRouter.assign`) are `mlops_client.ab_routing.Assignment`,
the same type whether the service or the client evaluated them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_client.models import _Result


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
    """e.g. promote, bandit_update, canary_advance, canary_rollback."""
    phase: int | None = None
    details: dict[str, Any] = {}
    """The evidence the decision was taken on (a promotion: the variant, how it was chosen, the
    registry move)."""
    at: datetime | None = None


class VariantSummary(_Result):
    """One variant's figures in a comparison. `sum`: successes (binary), sum of values
    (continuous) or of numerators (ratio); `std`: per-user standard deviation."""

    n: float
    mean: float | None = None
    std: float | None = None
    sum: float | None = None
    denominator_sum: float | None = None
    adjusted_mean: float | None = None
    """CUPED-adjusted mean (when covariates were sent)."""


class SequentialResult(_Result):
    """Always-valid p-value and confidence sequence (mSPRT): safe to look at any time."""

    p_value: float | None = None
    ci: list[float | None] | None = None
    significant: bool | None = None
    method: str | None = None


class BayesianResult(_Result):
    chance_to_win: float | None = None
    """P(the variant is better than the control, in the metric's direction)."""
    expected_loss: float | None = None
    method: str | None = None


class Comparison(_Result):
    """One variant against the control on one metric (`error` set, the rest empty, when the
    comparison could not be made, e.g. no data yet)."""

    variant: str
    error: str | None = None
    test: str | None = None
    """two_proportion_z, welch_t, delta_method_z or cuped_welch_t."""
    alpha: float | None = None
    control: VariantSummary | None = None
    treatment: VariantSummary | None = None
    abs_lift: float | None = None
    abs_lift_ci: list[float | None] | None = None
    rel_lift: float | None = None
    """Relative lift over the control (0.05 = +5%)."""
    rel_lift_ci: list[float | None] | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    """Corrected across every metric x variant (`correction`: holm or bh)."""
    correction: str | None = None
    significant: bool | None = None
    significant_adjusted: bool | None = None
    better: bool | None = None
    worse: bool | None = None
    sequential: SequentialResult | None = None
    bayesian: BayesianResult | None = None
    cuped: dict[str, Any] | None = None
    chi2: dict[str, Any] | None = None
    mann_whitney: dict[str, Any] | None = None

    @property
    def chance_to_win(self) -> float | None:
        return self.bayesian.chance_to_win if self.bayesian else None


class MetricResult(_Result):
    name: str
    type: str
    direction: str = "higher"
    primary: bool = False
    guardrail: bool = False
    comparisons: list[Comparison] = []
    """One per non-control variant."""

    def comparison(self, variant: str) -> Comparison:
        for c in self.comparisons:
            if c.variant == variant:
                return c
        raise KeyError(f"metric {self.name!r} has no comparison for variant {variant!r}")


class ResultVariant(_Result):
    name: str
    weight: float
    model_version: str | None = None
    exposures: int = 0
    """Users counted as exposed in the phase (routed in the experiment, or with an event)."""


class ExperimentResults(_Result):
    experiment: str
    status: str | None = None
    phase: int
    control: str
    correction: str | None = None
    variants: list[ResultVariant] = []
    sample_ratio_mismatch: dict[str, Any] | None = None
    """chi2, p_value, flagged (p < threshold), observed and expected users per variant."""
    metrics: list[MetricResult] = []

    def metric(self, name: str) -> MetricResult:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no results for metric {name!r}; there are {[m.name for m in self.metrics]}")

    @property
    def srm_flagged(self) -> bool:
        return bool(self.sample_ratio_mismatch and self.sample_ratio_mismatch.get("flagged"))


class PowerResult(_Result):
    """Required sample size for an effect (`mde` given) and/or the effect a sample size can
    detect (`n_per_variant` given)."""

    metric_type: str
    baseline_mean: float
    mde: float | None = None
    relative: bool = True
    n_per_variant: int | None = None
    alpha: float
    power: float
    variants: int
    required_per_variant: int | None = None
    required_total: int | None = None
    minimum_detectable_effect: float | None = None
    experiment: str | None = None
    metric: str | None = None
