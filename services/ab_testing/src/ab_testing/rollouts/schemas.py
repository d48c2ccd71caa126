"""What the rollout routes take and answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ab_testing.api.answers import Open
from ab_testing.experiments.schemas import DecisionRead

__all__ = ["DecisionRead", "EvaluationRead", "PromotionCreate"]


class PromotionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str | None = Field(
        default=None,
        max_length=100,
        description="default: the best variant on the primary metric significantly better than control",
    )
    alias: str = Field(default="production", max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
    test: Literal["sequential", "fixed"] = Field(
        default="sequential",
        description="which p-value picks the default winner: always-valid (safe however often the "
        "results were looked at) or fixed-horizon (only when the planned sample size was set in advance)",
    )


class EvaluationRead(Open):
    experiment: str
    mode: str
    status: str
