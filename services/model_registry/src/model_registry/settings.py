from typing import ClassVar

from mlops_kit.settings import ServiceSettings
from pydantic import Field

DAY_LIMIT = 36_600  # a century


class RegistrySettings(ServiceSettings):
    service_name: ClassVar[str] = "model_registry"
    default_port: ClassVar[int] = 8000

    # peers a reference profile can be built from (the names every service reads: MLOPS_*_URL)
    feature_store_url: str = Field(default="http://127.0.0.1:8002", description="MLOPS_FEATURE_STORE_URL")
    experiment_tracking_url: str = Field(
        default="http://127.0.0.1:8003", description="MLOPS_EXPERIMENT_TRACKING_URL"
    )
    peer_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    peer_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="per socket read, not per answer"
    )
    monitoring_evaluator: bool = Field(
        default=True, description="run the background evaluator of monitoring configurations and alert rules"
    )
    monitoring_poll_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="how often the evaluator looks for due evaluations"
    )
    monitoring_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="an evaluation lease not released for this long (its replica died) is taken over",
    )
    monitoring_metrics_cache_seconds: float = Field(
        default=5.0, ge=0, le=3600, description="/metrics reads the latest evaluations at most this often"
    )
    monitoring_metric_features: int = Field(
        default=50, ge=0, le=1000, description="features per model exported as per-feature drift metrics"
    )
    monitoring_raw_retention_days: float = Field(
        default=7.0,
        gt=0,
        le=DAY_LIMIT,
        description="days the logged feature values are kept after logging (then only the hourly "
        "aggregates answer for them)",
    )
    monitoring_label_retention_days: float = Field(
        default=35.0,
        gt=0,
        le=DAY_LIMIT,
        description="days a logged prediction's row (request id, prediction, label) is kept after "
        "logging: labels can join it until then, and the request id stays idempotent",
    )
    monitoring_aggregate_retention_days: float = Field(
        default=400.0, gt=0, le=DAY_LIMIT, description="days the hourly aggregates are kept"
    )
    monitoring_bucket_sample_rows: int = Field(
        default=1000, ge=10, le=100_000, description="rows (and labelled rows) each hourly aggregate samples"
    )
    monitoring_maintenance_interval_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="how often the log is rolled up and pruned"
    )
