from __future__ import annotations

from typing import ClassVar

from mlops_kit.settings import ServiceSettings
from pydantic import Field


class AbTestingSettings(ServiceSettings):
    service_name: ClassVar[str] = "ab_testing"
    default_port: ClassVar[int] = 8090

    exposure_flush_seconds: float = Field(
        default=0.5, gt=0, description="exposures are buffered off the request path and written this often"
    )
    exposure_buffer_max: int = Field(
        default=100_000, ge=1, description="exposures kept in memory before a flush"
    )
    definition_cache_seconds: float = Field(
        default=1.0, ge=0, description="how long a replica routes with a cached experiment definition"
    )
    controller_interval_seconds: float = Field(
        default=10.0, gt=0, description="how often bandit re-weighting and canary stages are evaluated"
    )
    max_events_per_request: int = 100_000
    max_route_batch: int = 10_000
