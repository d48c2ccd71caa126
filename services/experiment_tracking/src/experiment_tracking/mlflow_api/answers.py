"""The MLflow REST API's answers (protobuf JSON: empty fields left out), and its error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from experiment_tracking.artifacts.schemas import ArtifactFileRead
from experiment_tracking.runs.schemas import Number


class MlflowError(BaseModel):
    error_code: str
    message: str
    details: dict[str, Any] | None = None


class Empty(BaseModel):
    pass


class KeyValue(BaseModel):
    key: str
    value: str | None = None


class Experiment(BaseModel):
    experiment_id: str
    name: str
    artifact_location: str | None = None
    lifecycle_stage: str
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: list[KeyValue] | None = None


class ExperimentCreated(BaseModel):
    experiment_id: str


class ExperimentAnswer(BaseModel):
    experiment: Experiment


class ExperimentSearch(BaseModel):
    experiments: list[Experiment]
    next_page_token: str | None = None


class RunInfo(BaseModel):
    run_uuid: str
    run_id: str
    run_name: str | None = None
    experiment_id: str
    user_id: str | None = None
    status: str
    start_time: int | None = None
    end_time: int | None = None
    artifact_uri: str | None = None
    lifecycle_stage: str


class Metric(BaseModel):
    key: str
    value: Number
    timestamp: int
    step: int


class RunData(BaseModel):
    metrics: list[Metric] | None = None
    params: list[KeyValue] | None = None
    tags: list[KeyValue] | None = None


class DatasetInput(BaseModel):
    tags: list[KeyValue] | None = None
    dataset: dict[str, Any]


class RunInputs(BaseModel):
    dataset_inputs: list[DatasetInput] | None = None


class ModelOutput(BaseModel):
    model_id: str
    step: int | None = None


class RunOutputs(BaseModel):
    model_outputs: list[ModelOutput] | None = None


class Run(BaseModel):
    info: RunInfo
    data: RunData
    inputs: RunInputs | None = None
    outputs: RunOutputs | None = None


class RunAnswer(BaseModel):
    run: Run


class RunInfoAnswer(BaseModel):
    run_info: RunInfo


class RunSearch(BaseModel):
    runs: list[Run] | None = None
    next_page_token: str | None = None


class MetricHistory(BaseModel):
    metrics: list[Metric]
    next_page_token: str | None = None


class LoggedModelInfo(BaseModel):
    model_id: str
    experiment_id: str
    name: str | None = None
    creation_timestamp_ms: int | None = None
    last_updated_timestamp_ms: int | None = None
    artifact_uri: str | None = None
    status: str | None = None
    tags: list[KeyValue] | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None


class LoggedModelData(BaseModel):
    params: list[KeyValue] | None = None


class LoggedModel(BaseModel):
    info: LoggedModelInfo
    data: LoggedModelData | None = None


class LoggedModelAnswer(BaseModel):
    model: LoggedModel


class LoggedModelSearch(BaseModel):
    models: list[LoggedModel] | None = None
    next_page_token: str | None = None


class ArtifactFiles(BaseModel):
    root_uri: str | None = None
    files: list[ArtifactFileRead] | None = None


class ServerInfo(BaseModel):
    store_type: str
    workspaces_enabled: bool
    trace_archival_enabled: bool
    multipart_uploads_enabled: bool
    multipart_downloads_enabled: bool
    presigned_upload_run_id_supported: bool
    presigned_upload_model_id_supported: bool
    features_enabled: dict[str, Any]
