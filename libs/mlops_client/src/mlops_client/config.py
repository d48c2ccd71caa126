"""Service discovery from `MLOPS_*` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_URLS = {
    "model_registry": "http://127.0.0.1:8000",
    "feature_store": "http://127.0.0.1:8002",
    "experiment_tracking": "http://127.0.0.1:8003",
    "pipeline_orchestrator": "http://127.0.0.1:8004",
    "ab_testing": "http://127.0.0.1:8090",
    "model_serving": "http://127.0.0.1:8080",
}


def service_url(service: str) -> str:
    return os.environ.get(f"MLOPS_{service.upper()}_URL", DEFAULT_URLS[service]).rstrip("/")


@dataclass(frozen=True)
class ClientConfig:
    api_key: str | None = field(default_factory=lambda: os.environ.get("MLOPS_API_KEY") or None)
    timeout: float = field(default_factory=lambda: float(os.environ.get("MLOPS_TIMEOUT", "60")))
    connect_timeout: float = 5.0
    retries: int = 3
