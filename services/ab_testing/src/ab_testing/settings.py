from __future__ import annotations

from typing import ClassVar

from mlops_kit.settings import ServiceSettings
from pydantic import Field

from ab_testing.schemas import MAX_EVENTS, MAX_ROUTE_BATCH


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
    fold_chunk_events: int = Field(
        default=50_000, ge=1, description="pending events folded into the statistics per transaction"
    )
    fold_shards: int = Field(
        default=2,
        ge=1,
        le=64,
        description="users are split into this many shards, each folded by a process of its own",
    )
    read_fold_seconds: float = Field(
        default=5.0,
        gt=0,
        description="a read of the statistics first folds pending events for up to this long; what is "
        "left is reported as pending_events",
    )
    fold_in_process: bool = Field(
        default=False,
        description="fold in a thread of the service instead of a process of its own (one core for both)",
    )
    fold_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        description="how often the folders fold what arrived (reads of the statistics fold first anyway): "
        "larger chunks cost less per event",
    )
    max_events_per_request: int = Field(default=MAX_EVENTS, ge=1, le=MAX_EVENTS)
    max_route_batch: int = Field(default=MAX_ROUTE_BATCH, ge=1, le=MAX_ROUTE_BATCH)
