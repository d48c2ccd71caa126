"""Documentation models of the prediction bodies and answers (the routes decode bodies with
`model_serving.protocols`, which enforces the same rules faster) and the outcomes body."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from mlops_kit.bounds import NUL_FREE, FiniteFloat, Int64
from pydantic import BaseModel, ConfigDict, Field

MAX_ROWS = 10_000
MAX_COLUMNS = 10_000
Text = Annotated[str, Field(max_length=1024, pattern=NUL_FREE)]
Key = Annotated[str, Field(min_length=1, max_length=256, pattern=NUL_FREE)]
Scalar: TypeAlias = FiniteFloat | Int64 | Text | bool | None
Row = Annotated[list[Scalar], Field(max_length=MAX_COLUMNS)]
Rows = Annotated[list[Row], Field(max_length=MAX_ROWS)]
Named = Annotated[dict[Key, Scalar], Field(max_length=MAX_COLUMNS)]
Columns = Annotated[
    dict[Key, Annotated[list[Scalar], Field(max_length=MAX_ROWS)]], Field(max_length=MAX_COLUMNS)
]
Params = Annotated[dict[Key, Scalar], Field(max_length=100)]
RequestId = Annotated[str, Field(min_length=1, max_length=128, pattern=NUL_FREE)]
UserId = Annotated[str, Field(min_length=1, max_length=256, pattern=NUL_FREE)]
Entities = Annotated[dict[Key, Text | Int64], Field(max_length=100)]


class PredictBody(BaseModel):
    """`features`: one row (a list of values, or an object of named values) or a list of rows."""

    features: Row | Rows | Named
    user_id: UserId | None = None
    request_id: RequestId | None = None
    entities: Entities | None = None


class PredictRead(BaseModel):
    prediction: Any = None
    probability: list[float] | None = None
    model_version: str | None = None
    timestamp: str
    deployment: str
    request_id: str | None = None
    variant: str | None = None
    predictions: list[dict[str, Any]] | None = None


class DeploymentPredictBody(BaseModel):
    instances: Rows | Annotated[list[Named], Field(max_length=MAX_ROWS)] | None = None
    inputs: Columns | Rows | None = None
    user_id: UserId | None = None
    request_id: RequestId | None = None
    request_ids: Annotated[list[RequestId], Field(max_length=MAX_ROWS)] | None = None
    entities: Entities | Annotated[list[Entities], Field(max_length=MAX_ROWS)] | None = None


class DeploymentPredictRead(BaseModel):
    deployment: str
    model: str
    predictions: list[dict[str, Any]]
    classes: list[Any] | None
    timestamp: str


class DataframeSplit(BaseModel):
    columns: Annotated[list[Key], Field(max_length=MAX_COLUMNS)] | None = None
    index: Annotated[list[Int64 | Text], Field(max_length=MAX_ROWS)] | None = None
    data: Rows


class InvocationsBody(BaseModel):
    """Exactly one of the four (or a `text/csv` body with a header row)."""

    dataframe_split: DataframeSplit | None = None
    dataframe_records: Annotated[list[Named], Field(max_length=MAX_ROWS)] | None = None
    instances: Rows | Annotated[list[Named], Field(max_length=MAX_ROWS)] | None = None
    inputs: Columns | Rows | None = None
    params: Params | None = None


class InvocationsRead(BaseModel):
    predictions: list[Any]


class V2Tensor(BaseModel):
    name: Key
    shape: Annotated[list[Annotated[int, Field(ge=0, le=MAX_ROWS * MAX_COLUMNS)]], Field(max_length=2)]
    datatype: Annotated[str, Field(max_length=8, pattern=r"^(BOOL|U?INT(8|16|32|64)|FP(16|32|64)|BYTES)$")]
    data: Annotated[list[Scalar | Row], Field(max_length=MAX_ROWS * 100)]
    parameters: Params | None = None


class V2Output(BaseModel):
    name: Key
    parameters: Params | None = None


class V2InferBody(BaseModel):
    id: RequestId | None = None
    parameters: Params | None = None
    inputs: Annotated[list[V2Tensor], Field(min_length=1, max_length=MAX_COLUMNS)]
    outputs: Annotated[list[V2Output], Field(max_length=10)] | None = None


class V2OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2InferRead(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[V2OutputTensor]


class V2Server(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: bool


class V2Ready(BaseModel):
    ready: bool
    name: str | None = None


class V2TensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2Metadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMeta]
    outputs: list[V2TensorMeta]


class ModelInfo(BaseModel):
    deployment: str
    model_name: str
    model_version: str | None
    flavor: str | None
    loaded_at: str | None
    state: str
    target: dict[str, str]
    signature: dict[str, Any] | None
    experiment: str | None


class OutcomeIn(BaseModel):
    """An outcome of a served prediction: an A/B metric value and/or the true label."""

    model_config = ConfigDict(extra="forbid")
    request_id: RequestId
    metric: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")] | None = None
    value: float | None = Field(default=None, allow_inf_nan=False, strict=True)
    label: FiniteFloat | Int64 | Text | bool | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=256, pattern=NUL_FREE)] | None = None


class OutcomeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=10_000)


class OutcomesAccepted(BaseModel):
    events: int = Field(description="metric values sent to the experiment")
    labels: int = Field(description="labels joined to their logged predictions")
    unknown: list[str] = Field(description="request ids this replica cannot attribute (give user_id)")


class Ping(BaseModel):
    status: str
