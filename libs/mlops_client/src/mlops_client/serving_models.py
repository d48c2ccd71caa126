"""Typed results of the model serving client (unknown fields are kept, so newer servers still parse)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlops_client.models import _Result


class LoadedVersion(_Result):
    version: str
    loaded_at: datetime
    load_seconds: float
    flavor: str


class DeploymentStatus(_Result):
    state: str
    """PENDING, LOADING, READY or FAILED (the replica that answered)."""
    target_version: str | None = None
    loaded: LoadedVersion | None = None
    last_error: str | None = None
    failed_version: str | None = None
    variants: dict[str, str] = {}
    shadow_version: str | None = None
    replica: str = ""


class Deployment(_Result):
    name: str
    model: str
    alias: str | None = None
    version: str | None = None
    stage: str | None = None
    feature_service: str | None = None
    experiment: str | None = None
    monitoring: bool = True
    shadow: dict[str, Any] | None = None
    replicas: dict[str, int] = {}
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    status: DeploymentStatus


class Prediction(_Result):
    prediction: Any = None
    probability: list[float] | None = None
    model_version: str
    request_id: str
    variant: str | None = None


class Predictions(_Result):
    deployment: str
    model: str
    predictions: list[Prediction]
    classes: list[Any] | None = None
    timestamp: str


class OutcomesAccepted(_Result):
    events: int
    labels: int
    unknown: list[str] = []
