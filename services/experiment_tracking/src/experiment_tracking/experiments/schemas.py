from __future__ import annotations

from typing import Annotated, Any

from mlops_kit.bounds import NO_NUL
from pydantic import BaseModel, ConfigDict, Field

from experiment_tracking.experiments.service import DESCRIPTION_TAG
from experiment_tracking.validation import MAX_ARTIFACT_LOCATION, ExperimentTags

Text = Annotated[str, NO_NUL]


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=500, examples=["model-optimization-2024"])
    description: Text | None = Field(default=None, max_length=20000)
    tags: ExperimentTags = Field(default_factory=dict)
    artifact_location: Text | None = Field(
        max_length=MAX_ARTIFACT_LOCATION,
        default=None,
        description="where run artifacts go; default: this service's artifact store",
    )


class ExperimentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, min_length=1, max_length=500)
    description: Text | None = Field(default=None, max_length=20000)
    tags: ExperimentTags | None = Field(default=None, description="tags to set (merged into existing)")


class ExperimentRead(BaseModel):
    id: str
    name: str
    description: str | None
    tags: dict[str, str]
    lifecycle_stage: str
    artifact_location: str
    creation_time: int = Field(description="epoch milliseconds")
    last_update_time: int = Field(description="epoch milliseconds")

    @classmethod
    def of(cls, exp: dict[str, Any]) -> ExperimentRead:
        tags = dict(exp["tags"])
        return cls(
            id=exp["experiment_id"],
            name=exp["name"],
            description=tags.pop(DESCRIPTION_TAG, None),
            tags=tags,
            lifecycle_stage=exp["lifecycle_stage"],
            artifact_location=exp["artifact_location"],
            creation_time=exp["creation_time"],
            last_update_time=exp["last_update_time"],
        )


class ExperimentPage(BaseModel):
    items: list[ExperimentRead]
    next_page_token: str | None
