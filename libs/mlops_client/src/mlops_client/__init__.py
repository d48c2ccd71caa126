"""Typed Python client for the MLOps platform services (and the `mlops` CLI)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from mlops_client._base import ServiceClient, request_id
from mlops_client.ab_models import AbExperiment, ExperimentResults
from mlops_client.ab_routing import Assignment
from mlops_client.ab_testing import AbTestingClient, LocalRouter
from mlops_client.errors import (
    AuthError,
    ChecksumError,
    ConflictError,
    MlopsError,
    NotFoundError,
    PayloadTooLargeError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
)
from mlops_client.features import FeatureStoreClient, MaterializationFailedError
from mlops_client.monitoring import MonitoringClient
from mlops_client.monitoring_logger import Batching
from mlops_client.monitoring_models import (
    DriftReport,
    LabelsAccepted,
    LoggerStats,
    PerformanceReport,
    PredictionsAccepted,
    ReferenceProfile,
    ReferenceSummary,
)
from mlops_client.pipelines import (
    InvalidPipelineError,
    PipelineParameterError,
    PipelineRunFailedError,
    PipelinesClient,
)
from mlops_client.pipelines_models import (
    AlertRoute,
    Attempt,
    Pipeline,
    PipelineDefinition,
    PipelineRun,
    PipelineVersion,
    Schedule,
    TaskDefinition,
    TaskRun,
    Webhook,
)
from mlops_client.registry import RegistryClient
from mlops_client.serving import ServingClient
from mlops_client.tracking import ActiveRun, TrackingClient

__all__ = [
    "AbExperiment",
    "AbTestingClient",
    "ActiveRun",
    "AlertRoute",
    "Assignment",
    "Attempt",
    "AuthError",
    "Batching",
    "ChecksumError",
    "ConflictError",
    "DriftReport",
    "ExperimentResults",
    "FeatureStoreClient",
    "InvalidPipelineError",
    "LabelsAccepted",
    "LocalRouter",
    "LoggerStats",
    "MaterializationFailedError",
    "MlopsClient",
    "MlopsError",
    "MonitoringClient",
    "NotFoundError",
    "PayloadTooLargeError",
    "PerformanceReport",
    "Pipeline",
    "PipelineDefinition",
    "PipelineParameterError",
    "PipelineRun",
    "PipelineRunFailedError",
    "PipelineVersion",
    "PipelinesClient",
    "PredictionsAccepted",
    "ReferenceProfile",
    "ReferenceSummary",
    "RegistryClient",
    "Schedule",
    "ServerError",
    "ServiceClient",
    "ServiceUnavailableError",
    "ServingClient",
    "TaskDefinition",
    "TaskRun",
    "TrackingClient",
    "ValidationError",
    "Webhook",
    "request_id",
]


class MlopsClient:
    """All platform services behind one object; URLs and key come from `MLOPS_*` env vars.

    Closing it (or leaving its `with` block) delivers the predictions `monitoring` still holds."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        registry_url: str | None = None,
        tracking_url: str | None = None,
        feature_store_url: str | None = None,
        pipelines_url: str | None = None,
        ab_testing_url: str | None = None,
        serving_url: str | None = None,
        batching: Batching | None = None,
        **kwargs: Any,
    ):
        self.registry = RegistryClient(registry_url, api_key=api_key, **kwargs)
        self.tracking = TrackingClient(tracking_url, api_key=api_key, **kwargs)
        self.features = FeatureStoreClient(feature_store_url, api_key=api_key, **kwargs)
        self.pipelines = PipelinesClient(pipelines_url, api_key=api_key, **kwargs)
        self.ab_testing = AbTestingClient(ab_testing_url, api_key=api_key, **kwargs)
        self.serving = ServingClient(serving_url, api_key=api_key, **kwargs)
        # the registry serves monitoring; `batching` tunes the background prediction logger
        self.monitoring = MonitoringClient(registry_url, api_key=api_key, batching=batching, **kwargs)

    def close(self) -> None:
        self.monitoring.close()  # first: delivers the predictions still queued
        self.registry.close()
        self.tracking.close()
        self.features.close()
        self.pipelines.close()
        self.ab_testing.close()
        self.serving.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
