from __future__ import annotations

from typing import Annotated, Any

from mlops_kit.bounds import NO_NUL, FiniteFloat, JsonObject
from pydantic import BaseModel, ConfigDict, Field, field_validator

from model_registry.types import (
    ArtifactFormat,
    Framework,
    ModelName,
    Tag,
    UtcDatetime,
    VersionStr,
)

Strict = ConfigDict(extra="forbid")
Text = Annotated[str, NO_NUL]
MetricName = Annotated[str, Field(min_length=1, max_length=128)]
Dimension = Annotated[int, Field(ge=-1, le=2**31 - 1, description="-1: any size")]


class ColumnSpec(BaseModel):
    model_config = Strict
    name: Text | None = Field(None, max_length=256)
    type: Text = Field(..., min_length=1, max_length=64, description="e.g. double, long, string, tensor")
    shape: list[Dimension] | None = Field(None, max_length=32)
    optional: bool = False


class Signature(BaseModel):
    """Input/output schema of the model, as MLflow records it."""

    model_config = Strict
    inputs: list[ColumnSpec] = Field(default_factory=list, max_length=10_000)
    outputs: list[ColumnSpec] = Field(default_factory=list, max_length=10_000)


class DatasetRef(BaseModel):
    model_config = Strict
    name: Text = Field(..., min_length=1, max_length=256)
    version: Text | None = Field(None, max_length=128)
    uri: Text | None = Field(None, max_length=2048)


class Lineage(BaseModel):
    """Upstream references: where this version came from."""

    model_config = Strict
    run_id: Text | None = Field(None, max_length=128)
    experiment_id: Text | None = Field(None, max_length=128)
    pipeline_run_id: Text | None = Field(None, max_length=128)
    datasets: list[DatasetRef] = Field(default_factory=list, max_length=1000)
    feature_sets: list[DatasetRef] = Field(default_factory=list, max_length=1000)
    parent_version: VersionStr | None = None


def _tags_to_list(value: Any) -> Any:
    if isinstance(value, dict):
        return [f"{k}={v}" if v not in (None, "") else str(k) for k, v in value.items()]
    return value


class VersionFields(BaseModel):
    model_config = Strict
    version: VersionStr | None = Field(None, description="semver; omitted = next integer")
    framework: Framework = "other"
    format: ArtifactFormat | None = Field(
        None,
        description="pkl, joblib, onnx, tensorflow-savedmodel, pytorch, xgboost-json, xgboost-ubj, "
        "lightgbm-txt, catboost-cbm, keras, keras-h5, safetensors, other; omitted = told from the "
        "first uploaded files' names and first bytes (model.json of xgboost: xgboost-json), else the "
        "framework's usual format",
    )
    description: Text | None = Field(None, max_length=10_000)
    metrics: dict[MetricName, FiniteFloat] = Field(default_factory=dict, max_length=1000)
    params: JsonObject = Field(default_factory=dict, description="free-form JSON (strings up to 65,536)")
    tags: list[Tag] = Field(default_factory=list, max_length=100)
    signature: Signature | None = None
    lineage: Lineage = Field(default_factory=lambda: Lineage())
    run_id: Text | None = Field(None, max_length=128, description="shorthand for lineage.run_id")
    experiment_id: Text | None = Field(None, max_length=128)
    parent_version: VersionStr | None = None

    _tags = field_validator("tags", mode="before")(_tags_to_list)

    @field_validator("metrics")
    @classmethod
    def _metric_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if not key or len(key) > 128 or "\x00" in key:
                raise ValueError(f"metric name {key[:40]!r} must be 1-128 characters, no NUL")
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(f"metric {key!r} must be a finite number")
        return value


class ModelVersionCreate(VersionFields):
    """Register a model version (the model is created on its first version)."""

    name: ModelName
    model_description: Text | None = Field(None, max_length=10_000)
    sha256: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="checksum the uploaded artifact must match",
    )


class VersionCreate(VersionFields):
    sha256: str | None = Field(None, max_length=64, pattern=r"^[0-9a-fA-F]{64}$")


class ArtifactRead(BaseModel):
    path: str
    size_bytes: int
    sha256: str
    created_at: UtcDatetime


class ModelVersionRead(BaseModel):
    name: str
    version: str
    framework: str
    format: str
    stage: str
    status: str
    description: str | None
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: list[str]
    signature: dict[str, Any] | None
    lineage: dict[str, Any]
    aliases: list[str]
    size_bytes: int
    sha256: str | None
    artifacts: list[ArtifactRead]
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str | None
    download_url: str


def version_fields(
    name: str, version: Any, aliases: list[str], artifacts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `ModelVersionRead` fields of a version, written once for both read paths: `version` is
    an ORM row or the hot path's SQL row, `artifacts` dicts of `ArtifactRead`'s fields. Aliases and
    artifacts are sorted here, by code point, so the answer is the same whatever the collation."""
    return {
        "name": name,
        "version": version.version,
        "framework": version.framework,
        "format": version.format,
        "stage": version.stage,
        "status": version.status,
        "description": version.description,
        "metrics": version.metrics or {},
        "params": version.params or {},
        "tags": version.tags or [],
        "signature": version.signature,
        "lineage": version.lineage or {},
        "aliases": sorted(aliases),
        "size_bytes": version.size_bytes,
        "sha256": version.sha256,
        "artifacts": sorted(artifacts, key=lambda a: a["path"]),
        "created_at": version.created_at,
        "updated_at": version.updated_at,
        "created_by": version.created_by,
        "download_url": f"/api/models/{name}/versions/{version.version}/download",
    }


class ModelVersionPage(BaseModel):
    items: list[ModelVersionRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ModelRead(BaseModel):
    name: str
    description: str | None
    tags: list[str]
    aliases: dict[str, str]
    latest_version: str | None
    version_count: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str | None
    versions: list[ModelVersionRead] | None = None


class ModelPage(BaseModel):
    items: list[ModelRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class ModelUpdate(BaseModel):
    model_config = Strict
    description: Text | None = Field(None, max_length=10_000)
    tags: list[Tag] | None = Field(None, max_length=100)

    _tags = field_validator("tags", mode="before")(_tags_to_list)


class ModelVersionUpdate(ModelUpdate):
    pass


class LineageRead(BaseModel):
    name: str
    version: str
    lineage: dict[str, Any]
    parent: dict[str, Any] | None
    children: list[str]
