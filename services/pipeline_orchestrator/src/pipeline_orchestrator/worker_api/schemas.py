"""What remote workers send about their attempt, and what they are answered."""

from __future__ import annotations

from typing import Any

from mlops_kit.bounds import NulFreeStr as Text
from pydantic import BaseModel, ConfigDict, Field

from pipeline_orchestrator.api.answers import LeaseRead, Recorded
from pipeline_orchestrator.protocol import MAX_ERROR

__all__ = ["Finished", "LeaseRead", "Recorded", "WorkerHello"]


class WorkerHello(BaseModel):
    model_config = ConfigDict(extra="ignore")

    worker: str | None = Field(default=None, max_length=200)


class Finished(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    outputs: dict[str, Any] = Field(default_factory=dict, json_schema_extra={"maxProperties": 10_000})
    error: Text | None = Field(default=None, max_length=MAX_ERROR, description="the tail is kept")
    exit_status: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
