"""Request and response shapes of the monitoring routes (every input bounded)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from mlops_kit.bounds import NUL_FREE, BoundedDatetime, FiniteFloat, IdStr, Int64, MapKey
from pydantic import BaseModel, Field, StringConstraints

MAX_ROWS = 10_000
ValueText = Annotated[str, StringConstraints(max_length=1024, pattern=NUL_FREE)]
Scalar: TypeAlias = bool | Int64 | FiniteFloat | ValueText
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NUL_FREE)]
VersionStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NUL_FREE)]
Probability: TypeAlias = FiniteFloat | Annotated[list[FiniteFloat], Field(max_length=1000)]


class PredictionIn(BaseModel):
    request_id: RequestId
    version: VersionStr
    timestamp: BoundedDatetime | None = Field(
        None, description="when it was predicted (UTC); now when absent"
    )
    features: Annotated[dict[MapKey, Scalar | None], Field(max_length=1000)]
    prediction: Scalar | None = None
    probability: Probability | None = Field(
        None, description="positive-class probability, or one per class in sorted class order"
    )
    variant: VersionStr | None = Field(
        None, description="the A/B variant (or shadow) that served it, as model serving reports it"
    )


PredictionRows = Annotated[list[PredictionIn], Field(min_length=1, max_length=MAX_ROWS)]


class PredictionBatch(BaseModel):
    predictions: PredictionRows


class PredictionsAccepted(BaseModel):
    accepted: int
    duplicates: int = Field(description="rows whose request_id was already logged (or repeated in the batch)")


class LabelIn(BaseModel):
    request_id: RequestId
    label: Scalar


LabelRows = Annotated[list[LabelIn], Field(min_length=1, max_length=MAX_ROWS)]


class LabelBatch(BaseModel):
    labels: LabelRows


class LabelsAccepted(BaseModel):
    labelled: int
    unknown: int = Field(description="labels whose request_id has no logged prediction")
    unknown_request_ids: list[IdStr] = Field(description="the first 100 of them")


class ColumnSummary(BaseModel):
    name: str
    kind: str
    count: int
    missing: int
    sampled: bool


class ReferenceSummary(BaseModel):
    name: str
    version: str
    rows: int
    sampled: bool = Field(description="true when some column's quantiles, bins and sample come from a sample")
    columns: list[ColumnSummary]
    created_at: datetime
    created_by: str | None


class ReferenceRead(ReferenceSummary):
    profile: dict[str, Any]


class WindowRead(BaseModel):
    start: datetime | None
    end: datetime | None
    last_n: int | None
    count: int = Field(description="predictions in the window that were used")
    truncated: bool = Field(description="the window held more rows than the limit; the most recent were used")
    source: Literal["raw", "aggregates"] = Field(
        "raw",
        description="raw: the logged rows; aggregates: some of the window's raw rows were pruned, "
        "so it was answered from the hourly buckets' samples",
    )
    sampled: bool = Field(False, description="the rows used are a uniform sample of the window's rows")
    rows: int | None = Field(
        None,
        description="with sampled: the rows the window's hours hold (whole hours), of which count were used",
    )
    variant: str | None = Field(None, description="only the predictions served by this variant, when asked")


class DriftRead(BaseModel):
    name: str
    version: str
    window: WindowRead
    features: list[dict[str, Any]]
    dataset: dict[str, Any]
    unknown_columns: list[str]
    missing_columns: list[str]


class PerformanceRead(BaseModel):
    name: str
    version: str
    window: WindowRead
    performance: dict[str, Any]
    registered: dict[str, dict[str, Any]]
