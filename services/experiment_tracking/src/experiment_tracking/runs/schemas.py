from __future__ import annotations

from typing import Annotated, Any

from mlops_kit.bounds import NO_NUL, EpochMillis, ExpressionStr, IdStr, JsonObject
from pydantic import BaseModel, ConfigDict, Field, RootModel

from experiment_tracking.validation import MAX_TAG_VALUE, RunParams, RunTags
from experiment_tracking.values import json_number

DESCRIPTION_TAG = "mlflow.note.content"
SOURCE_TAGS = {
    "git_commit": "mlflow.source.git.commit",
    "entry_point": "mlflow.project.entryPoint",
    "name": "mlflow.source.name",
    "type": "mlflow.source.type",
}
CONTEXT_TAG = "mlflow.data.context"
Text = Annotated[str, NO_NUL]
OrderBy = Annotated[list[Annotated[str, Field(max_length=500), NO_NUL]], Field(max_length=100)]


class RunSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    git_commit: Text | None = Field(default=None, max_length=8000, description="source code version")
    entry_point: Text | None = Field(default=None, max_length=8000, examples=["train.py:main"])
    name: Text | None = Field(default=None, max_length=8000, description="script, notebook or job")
    type: Text | None = Field(default=None, max_length=20, examples=["LOCAL", "JOB", "PROJECT"])


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=500)
    source: Text = Field(min_length=1, max_length=65535, examples=["s3://bucket/train.parquet"])
    digest: Text | None = Field(default=None, max_length=36, description="content hash or version")
    source_type: Text = Field(default="external", max_length=36)
    context: Text | None = Field(default=None, max_length=500, examples=["training", "evaluation"])


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    run_name: Text | None = Field(default=None, max_length=250, alias="run_name")
    parameters: RunParams = Field(default_factory=dict, description="logged once; immutable")
    tags: RunTags = Field(default_factory=dict)
    description: Text | None = Field(default=None, max_length=MAX_TAG_VALUE)
    start_time: EpochMillis | None = Field(
        default=None, strict=True, description="epoch milliseconds; default now"
    )
    parent_run_id: IdStr | None = Field(default=None, description="nest this run under another")
    user_id: Text | None = Field(default=None, max_length=256)
    source: RunSource | None = None
    environment: JsonObject | None = Field(
        default=None,
        description="interpreter and packages",
        examples=[{"python_version": "3.11.7", "packages": ["scikit-learn==1.5.2"]}],
    )
    datasets: list[DatasetRef] = Field(default_factory=list, max_length=1000)


class RunUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(
        default=None, max_length=9, pattern="^(RUNNING|SCHEDULED|FINISHED|FAILED|KILLED)$"
    )
    end_time: EpochMillis | None = Field(
        default=None, strict=True, description="epoch milliseconds; default now when finishing"
    )
    run_name: Text | None = Field(default=None, min_length=1, max_length=250)
    description: Text | None = Field(default=None, max_length=MAX_TAG_VALUE)


class RunSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_ids: list[IdStr] = Field(min_length=1, max_length=1000)
    filter: ExpressionStr | None = Field(
        default=None,
        examples=['metrics.accuracy > 0.9 and params.model = "rf" and attributes.status = "FINISHED"'],
    )
    order_by: OrderBy = Field(default_factory=list, examples=[["metrics.f1 DESC"]])
    view: str = Field(default="ACTIVE_ONLY", max_length=12, pattern="^(ACTIVE_ONLY|DELETED_ONLY|ALL)$")
    max_results: int = Field(default=100, ge=1, le=50000)
    page_token: Text | None = Field(default=None, max_length=1000)


Number = float | str  # "NaN", "Infinity" and "-Infinity" travel as strings


class DatasetRead(BaseModel):
    name: str
    digest: str | None
    source_type: str | None
    source: str | None
    context: str | None


class RunRead(BaseModel):
    """The native shape: plain maps for params, tags and latest metrics."""

    id: str
    experiment_id: str
    name: str | None
    status: str
    start_time: int | None = Field(description="epoch milliseconds")
    end_time: int | None
    lifecycle_stage: str
    user_id: str | None
    artifact_uri: str | None
    parent_run_id: str | None
    description: str | None
    params: dict[str, str]
    metrics: dict[str, Number] = Field(description="the latest value of each metric")
    tags: dict[str, str]
    source: dict[str, str]
    environment: dict[str, Any] | None
    datasets: list[DatasetRead]

    @classmethod
    def of(cls, run: dict[str, Any]) -> RunRead:
        return cls.model_validate(run_fields(run))


def _dataset(row: Any) -> dict[str, Any]:
    name, digest, source_type, source, _schema, _profile, tags = row
    return {
        "name": name,
        "digest": digest,
        "source_type": source_type,
        "source": source,
        "context": (tags or {}).get(CONTEXT_TAG),
    }


def run_fields(run: dict[str, Any]) -> dict[str, Any]:
    """`RunRead`'s fields as a plain dict: a page of runs (up to 50,000) is dumped with orjson
    from these, without building a model per run."""
    tags = dict(run["tags"])
    source = {field: tags[tag] for field, tag in SOURCE_TAGS.items() if tag in tags}
    return {
        "id": run["id"],
        "experiment_id": run["experiment_id"],
        "name": run["name"],
        "status": run["status"],
        "start_time": run["start_time"],
        "end_time": run["end_time"],
        "lifecycle_stage": run["lifecycle_stage"],
        "user_id": run["user_id"],
        "artifact_uri": run["artifact_uri"],
        "parent_run_id": tags.get("mlflow.parentRunId"),
        "description": tags.get(DESCRIPTION_TAG),
        "params": run["params"],
        "metrics": {m["key"]: json_number(m["value"]) for m in run["metrics"]},
        "tags": tags,
        "source": source,
        "environment": run["environment"],
        "datasets": [_dataset(d) for d in run["datasets"]],
    }


class RunPage(BaseModel):
    items: list[RunRead]
    next_page_token: str | None


class MetricsLoggedRead(BaseModel):
    run_id: str
    logged: int


class LatestMetricRead(BaseModel):
    value: Number
    step: int
    timestamp: int


class LatestMetricsRead(RootModel[dict[str, LatestMetricRead]]):
    """metric key -> its latest value"""

    @classmethod
    def of(cls, run: dict[str, Any]) -> LatestMetricsRead:
        return cls(
            {
                m["key"]: LatestMetricRead(
                    value=json_number(m["value"]), step=m["step"], timestamp=m["timestamp"]
                )
                for m in run["metrics"]
            }
        )


class MetricPointRead(BaseModel):
    value: Number
    timestamp: int
    step: int


class MetricHistoryPage(BaseModel):
    key: str
    items: list[MetricPointRead]
    next_page_token: str | None


class RunSummaryRead(BaseModel):
    id: str
    name: str | None
    experiment_id: str
    status: str


class RunComparisonRead(BaseModel):
    runs: list[RunSummaryRead]
    params: dict[str, dict[str, Any]] = Field(description="param -> run id -> value")
    metrics: dict[str, dict[str, Any]] = Field(description="metric -> run id -> latest value")
    differing_params: list[str]
    differing_metrics: list[str]


class MetricSeriesRead(BaseModel):
    run_id: str
    points: list[MetricPointRead]


class MetricHistoriesRead(BaseModel):
    key: str
    series: list[MetricSeriesRead]
