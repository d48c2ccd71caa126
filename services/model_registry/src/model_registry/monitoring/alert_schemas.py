"""Shapes of the monitoring configuration (the orchestration document's `MonitoringConfig` plus the
window, the watched version and the drift configuration) and of alert state and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mlops_kit.bounds import NUL_FREE, FiniteFloat, MapKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from model_registry.monitoring import drift as st

MAX_RULES = 100
MAX_DURATION_MINUTES = 7 * 24 * 60
MAX_INTERVAL_SECONDS = 7 * 86_400
Severity = Literal["low", "medium", "high", "critical"]
AlertType = Literal["performance", "drift"]
Operator = Literal[
    "less_than", "less_than_or_equal", "greater_than", "greater_than_or_equal", "equal", "not_equal"
]
OPERATOR_SYMBOLS = {
    "<": "less_than",
    "<=": "less_than_or_equal",
    ">": "greater_than",
    ">=": "greater_than_or_equal",
    "==": "equal",
    "!=": "not_equal",
    "lt": "less_than",
    "lte": "less_than_or_equal",
    "le": "less_than_or_equal",
    "gt": "greater_than",
    "gte": "greater_than_or_equal",
    "ge": "greater_than_or_equal",
    "eq": "equal",
    "ne": "not_equal",
}
# Prometheus' customary severities, for users who write them
SEVERITY_ALIASES = {"info": "low", "warning": "medium", "error": "high"}
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:-]*$")]
MetricName = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=NUL_FREE)]
Description = Annotated[str, StringConstraints(max_length=2000, pattern=NUL_FREE)]
Binning = Literal["quantile", "evidently"]
Method = Literal["ks", "wasserstein", "psi", "jensenshannon", "chisquare"]
assert set(Method.__args__) == set(st.METHODS)  # type: ignore[attr-defined]


def _lower(value: Any) -> Any:
    # AlertSeverity.HIGH arrives as "HIGH" or "high" depending on how the client serialized it
    return value.strip().lower() if isinstance(value, str) else value


class AlertRuleIn(BaseModel):
    """One alert rule, as in the orchestration document (`AlertRule`)."""

    model_config = ConfigDict(extra="forbid")

    name: RuleName = Field(description="unique within the model's configuration")
    alert_type: AlertType
    severity: Severity = Field(
        "medium", description="also accepted: info (low), warning (medium), error (high)"
    )
    metric_name: MetricName = Field(
        description="a performance metric (accuracy, f1, roc_auc, mae, rmse, ...) for `performance`; "
        "dataset_drift, drift_score, drifted_share, drift_score:<feature> or drifted:<feature> for `drift`"
    )
    operator: Operator = Field(
        description="also accepted as <, <=, >, >=, ==, != and lt, lte, gt, gte, eq, ne"
    )
    threshold: FiniteFloat
    duration_minutes: Annotated[
        int, Field(ge=0, le=MAX_DURATION_MINUTES, description="how long the condition holds before firing")
    ] = 0
    enabled: bool = True
    description: Description | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        value = _lower(value)
        return SEVERITY_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("operator", mode="before")
    @classmethod
    def _operator(cls, value: Any) -> Any:
        value = _lower(value)
        return OPERATOR_SYMBOLS.get(value, value) if isinstance(value, str) else value


class FeatureDriftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Method | None = None
    threshold: Annotated[FiniteFloat, Field(gt=0)] | None = None
    binning: Binning | None = None


class DriftConfigIn(BaseModel):
    """Maps onto the core's `DriftConfig` (see the drift core's documentation above)."""

    model_config = ConfigDict(extra="forbid")

    features: Annotated[dict[MapKey, FeatureDriftIn], Field(max_length=1000)] = {}
    alpha: Annotated[FiniteFloat, Field(gt=0, lt=1)] = 0.05
    drift_share: Annotated[FiniteFloat, Field(gt=0, le=1)] = 0.5
    min_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 30
    binning: Binning = "quantile"


class MonitoringConfigIn(BaseModel):
    """The orchestration document's `MonitoringConfig` and our extensions (window, version, drift)."""

    model_config = ConfigDict(extra="forbid")

    model_name: Annotated[str, StringConstraints(max_length=128, pattern=NUL_FREE)] | None = Field(
        None, description="required by POST /api/v1/monitoring/setup; must match the path on PUT"
    )
    monitoring_interval_seconds: Annotated[int, Field(ge=1, le=MAX_INTERVAL_SECONDS)] = 60
    drift_detection_enabled: bool = True
    enabled: bool = Field(True, description="false keeps the configuration but stops evaluating it")
    alert_rules: Annotated[list[AlertRuleIn], Field(max_length=MAX_RULES)] = []
    window: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        "1h", description="evaluate the predictions of this long before each evaluation (30m, 1h, 7d)"
    )
    last_n: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="and/or only the most recent n predictions"
    )
    version: Annotated[str, StringConstraints(min_length=1, max_length=65, pattern=NUL_FREE)] | None = Field(
        None,
        description="the watched version: a version, 'latest' or '@alias' (followed as it moves); "
        "default: the version of the most recently logged prediction",
    )
    drift: DriftConfigIn = Field(default_factory=DriftConfigIn)


class MonitoringSetupIn(MonitoringConfigIn):
    model_name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NUL_FREE)]


class MonitoringConfigRead(MonitoringConfigIn):
    model_name: str
    next_evaluation_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


class Evidence(BaseModel):
    """What a state change was decided on."""

    metric: str
    value: float | None
    threshold: float
    operator: str
    condition: bool = Field(description="whether the condition held (false when there is no value)")
    reason: str | None = Field(description="why there is no value (insufficient data, no reference, ...)")
    window: dict[str, Any] | None
    version: str | None
    evaluated_at: datetime


class AlertStateRead(BaseModel):
    rule: str
    alert_type: str
    severity: str
    metric_name: str
    state: Literal["inactive", "pending", "firing", "resolved"]
    since: datetime | None = Field(description="when the rule entered this state")
    active_since: datetime | None = Field(description="when the condition started to hold (pending, firing)")
    evaluated_at: datetime | None
    evidence: Evidence | None


class AlertEventRead(BaseModel):
    id: int
    rule: str
    severity: str
    from_state: str
    to_state: str
    at: datetime
    evidence: dict[str, Any]


class AlertsRead(BaseModel):
    name: str
    last_evaluation: dict[str, Any] | None = Field(
        description="{version, evaluated_at, duration_seconds, evaluator, error}"
    )
    rules: list[AlertStateRead]
    history: list[AlertEventRead] = Field(description="state changes, newest first")
    total: int
    limit: int
    offset: int
    next_offset: int | None


class EvaluationRead(BaseModel):
    name: str
    version: str | None
    evaluated_at: datetime
    duration_seconds: float
    evaluator: str
    error: str | None
    window: dict[str, Any] | None
    metrics: dict[str, float | None] = Field(description="every value a rule can use, null when unknown")
    reasons: dict[str, str] = Field(description="why a metric has no value")
    changes: list[AlertEventRead]
    rules: list[AlertStateRead]
