"""Request and answer bodies of the retraining routes; every string, number and list bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mlops_kit.bounds import JsonObject
from mlops_kit.bounds import NulFreeStr as Text
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_FEATURES = 1000
MAX_WINDOW_MINUTES = 90 * 24 * 60  # the registry keeps about 35 days of labels; 90 days bounds it
MAX_NEW_DATA = 100_000  # the registry reads at most 100,000 predictions per window

FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]
MetricName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
Decision = Literal["started", "cooldown", "already_running", "disabled", "pipeline_missing", "failed"]
Kind = Literal["performance", "drift", "schedule", "new_data", "alert", "manual"]


class PerformanceTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    metric: MetricName = Field(default="accuracy", description="a metric of the registry's performance")
    threshold: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12, description="retrain below this")
    window_minutes: int = Field(default=60, ge=1, le=MAX_WINDOW_MINUTES)
    min_samples: int = Field(default=30, ge=1, le=MAX_NEW_DATA, description="labelled rows needed")
    higher_is_better: bool = Field(default=True, description="false: retrain above the threshold")


class DriftTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    threshold: float = Field(allow_inf_nan=False, ge=0, le=1e12, description="retrain above this")
    features: list[FeatureName] = Field(
        default_factory=list, max_length=MAX_FEATURES, description="watched features; none: every one"
    )
    measure: Literal["share", "statistic"] = Field(
        default="share",
        description="share: the share of watched features that drifted; statistic: the largest "
        "drift statistic among them (the registry's per-feature method: PSI, Wasserstein, ...)",
    )
    window_minutes: int = Field(default=60, ge=1, le=MAX_WINDOW_MINUTES)


class ScheduleTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cron: Text = Field(min_length=1, max_length=120, description="five cron fields")
    timezone: Text = Field(default="UTC", max_length=64)


class NewDataTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    labelled_rows: int = Field(
        ge=1, le=MAX_NEW_DATA, description="labelled predictions since the last retraining"
    )


class RetrainingPolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    pipeline: Text = Field(default="train-classifier", min_length=1, max_length=100)
    parameters: JsonObject = Field(
        default_factory=dict, description="run parameters; model_name defaults to the model"
    )
    cooldown_seconds: float = Field(default=3600.0, ge=0, le=30 * 86_400)
    evaluation_interval_seconds: float = Field(default=300.0, ge=1, le=86_400)
    enabled: bool = True
    alerts: bool = Field(default=True, description="AlertManager alerts with this model label retrain it")
    performance: PerformanceTrigger | None = None
    drift: DriftTrigger | None = None
    schedule: ScheduleTrigger | None = None
    new_data: NewDataTrigger | None = None


class RetrainingTriggerConfig(BaseModel):
    """The orchestration document's body for `POST /api/v1/retraining/setup/{model_name}`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    performance_threshold: float | None = Field(default=None, allow_inf_nan=False, ge=-1e12, le=1e12)
    performance_metric: MetricName = "accuracy"
    evaluation_window: int = Field(default=60, ge=1, le=MAX_WINDOW_MINUTES, description="minutes")
    data_drift_threshold: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=1e12)
    drift_monitoring_features: list[FeatureName] = Field(default_factory=list, max_length=MAX_FEATURES)
    retraining_schedule: Text | None = Field(default=None, min_length=1, max_length=120)
    new_data_threshold: int | None = Field(default=None, ge=1, le=MAX_NEW_DATA)


class RetrainingPolicyRead(BaseModel):
    model: str
    pipeline: str
    parameters: dict[str, Any]
    cooldown_seconds: float
    evaluation_interval_seconds: float
    enabled: bool
    alerts: bool
    performance: PerformanceTrigger | None
    drift: DriftTrigger | None
    schedule: ScheduleTrigger | None
    new_data: NewDataTrigger | None
    next_evaluation_at: datetime | None
    next_scheduled_at: datetime | None
    last_triggered_at: datetime | None
    last_run_id: str | None
    created_at: datetime
    updated_at: datetime


class RetrainingPolicyPage(BaseModel):
    items: list[RetrainingPolicyRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


class RetrainingTriggerRead(BaseModel):
    id: str
    model: str
    kind: Kind
    source: str = Field(description="monitor, alertmanager or api")
    evidence: dict[str, Any] = Field(description="metric, value, threshold, window (or the alert)")
    decision: Decision
    reason: str
    run_id: str | None
    run_state: str | None = Field(description="the run's state now (or when it ended)")
    produced_version: str | None = Field(description="the version the run's register task registered")
    produced: dict[str, Any] | None = Field(description="the register task's outputs, once the run ended")
    at: datetime


class RetrainingTriggerPage(BaseModel):
    items: list[RetrainingTriggerRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None = None


class EvaluationRead(BaseModel):
    model: str
    evaluated_at: datetime
    signals: list[dict[str, Any]] = Field(description="each watched signal's evidence, fired or not")
    triggers: list[RetrainingTriggerRead] = Field(description="the decisions taken on the fired ones")
