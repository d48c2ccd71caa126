"""Reference data by reference: a training frame from the feature store (a point-in-time
historical retrieval), or a dataset logged on an experiment-tracking run (one of its artifact
files). Fetched over HTTP from the peer (URL from the settings) with the caller's own API key and
timeouts, streamed into a spooled file; never inside a database transaction."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from mlops_kit.bounds import MapKey, NameStr
from mlops_kit.limits import upload_limit
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.requests import Request

from model_registry.errors import (
    InvalidReferenceSource,
    SourceFailed,
    SourceForbidden,
    SourceNotFound,
    SourceUnavailable,
)
from model_registry.monitoring.schemas import Scalar
from model_registry.monitoring.upload import PARQUET_TYPES, Data, from_stream, media_type

PARQUET = "application/vnd.apache.parquet"
EVENT_TIMESTAMP = "event_timestamp"
ERROR_PREVIEW = 64 * 1024
RunId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ArtifactPath = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00\\]+$")]
Column = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class FeatureStoreSource(BaseModel):
    """A historical retrieval (`POST /api/features/historical`), answered as Parquet."""

    model_config = ConfigDict(extra="forbid")
    entity_rows: Annotated[
        list[Annotated[dict[MapKey, Scalar | None], Field(max_length=1000)]],
        Field(min_length=1, max_length=1_000_000),
    ] = Field(description="join keys, `event_timestamp` and any label columns, one per training row")
    features: Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=10_000)] | None = None
    feature_service: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    feature_service_version: Annotated[int, Field(ge=1, le=2**31)] | None = None
    full_feature_names: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> FeatureStoreSource:
        if bool(self.features) == bool(self.feature_service):
            raise ValueError("give either features or feature_service")
        return self


class TrackingRunSource(BaseModel):
    """A dataset input logged on a run (by name, optionally digest), or one of its artifact files."""

    model_config = ConfigDict(extra="forbid")
    run_id: RunId
    dataset: NameStr | None = Field(default=None, description="name of a dataset input of the run")
    digest: Annotated[str, Field(max_length=36)] | None = None
    artifact_path: ArtifactPath | None = Field(default=None, description="a file among the run's artifacts")

    @model_validator(mode="after")
    def _one_target(self) -> TrackingRunSource:
        if (self.dataset is None) == (self.artifact_path is None):
            raise ValueError("give either dataset or artifact_path")
        return self


class ReferenceSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feature_store: FeatureStoreSource | None = None
    tracking_run: TrackingRunSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceSource:
        if (self.feature_store is None) == (self.tracking_run is None):
            raise ValueError("give exactly one of feature_store and tracking_run")
        return self


class ReferenceFromSource(BaseModel):
    """`PUT .../monitoring/reference` with `{"source": ...}`: the data is fetched from a peer."""

    model_config = ConfigDict(extra="forbid")
    source: ReferenceSource
    types: Annotated[dict[MapKey, Literal["numeric", "categorical", "boolean"]], Field(max_length=1000)] = {}
    exclude: Annotated[list[Column], Field(max_length=1000)] | None = Field(
        default=None,
        description="columns left out; default: `event_timestamp` for the feature store, none otherwise",
    )

    def excluded(self) -> frozenset[str]:
        if self.exclude is not None:
            return frozenset(self.exclude)
        return frozenset({EVENT_TIMESTAMP} if self.source.feature_store else ())


# ---- HTTP -------------------------------------------------------------------------------------


class Peer:
    """One peer service as this request reaches it: base URL, the caller's credentials, limits."""

    def __init__(self, request: Request, service: str, base_url: str) -> None:
        settings = request.app.state.settings
        self.service, self.base = service, base_url.rstrip("/")
        self.headers = {k: v for k, v in request.headers.items() if k in ("authorization", "x-api-key")}
        self.timeout = httpx.Timeout(
            settings.peer_read_timeout_seconds, connect=settings.peer_connect_timeout_seconds
        )
        self.limits = (settings.max_json_bytes, upload_limit(request))

    @asynccontextmanager
    async def call(
        self, method: str, path: str, accept: str = "*/*", **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        """A streamed answer; a peer that cannot be reached is a 503, an error answer is mapped."""
        headers = {**self.headers, "accept": accept}
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
                client.stream(method, f"{self.base}{path}", headers=headers, **kwargs) as response,
            ):
                if response.status_code != 200:
                    raise await self._refused(response)
                yield response
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"the {self.service} at {self.base} could not be reached: {type(exc).__name__}",
                {"service": self.service, "url": self.base},
            ) from None

    async def json(self, path: str, **kwargs: Any) -> Any:
        async with self.call("GET", path, **kwargs) as response:
            body = await _preview(response, self.limits[0])
        try:
            return json.loads(body)
        except ValueError:
            raise SourceFailed(f"the {self.service} answered something other than JSON", {}) from None

    async def data(self, method: str, path: str, fmt: str | None, **kwargs: Any) -> Data:
        """The answer's bytes as reference data (format: given, else by content type or magic)."""
        async with self.call(method, path, **kwargs) as response:
            content_type = media_type(response.headers.get("content-type"))
            if fmt is None and content_type in PARQUET_TYPES:
                fmt = "parquet"
            return await from_stream(response.aiter_bytes(), fmt, self.limits, octet=True)

    async def _refused(self, response: httpx.Response) -> Exception:
        text = (await _preview(response, ERROR_PREVIEW)).decode(errors="replace")
        answer = _peer_error(text)
        details = {"service": self.service, "status": response.status_code, "answer": answer}
        what = f"the {self.service} answered {response.status_code}: {answer.get('message', '')}"[:500]
        if response.status_code == 404:
            return SourceNotFound(what, details)
        if response.status_code in (401, 403):
            return SourceForbidden(f"{what} (the request's own API key is passed on)", details)
        if 400 <= response.status_code < 500:
            return InvalidReferenceSource(what, details)
        return SourceFailed(what, details)


async def _preview(response: httpx.Response, limit: int) -> bytes:
    parts, size = [], 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(parts)[:limit]


def _peer_error(text: str) -> dict[str, str]:
    """The platform's `{"error": {"code", "message"}}` or MLflow's `{"error_code", "message"}`."""
    try:
        body = json.loads(text)
    except ValueError:
        return {"message": text[:300]}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return {"code": str(error.get("code", ""))[:100], "message": str(error.get("message", ""))[:300]}
    if isinstance(body, dict) and "error_code" in body:
        return {"code": str(body["error_code"])[:100], "message": str(body.get("message", ""))[:300]}
    return {"message": text[:300]}


# ---- the two sources --------------------------------------------------------------------------


async def _from_feature_store(request: Request, source: FeatureStoreSource) -> Data:
    peer = Peer(request, "feature store", request.app.state.settings.feature_store_url)
    body = source.model_dump(exclude_none=True)
    return await peer.data("POST", "/api/features/historical", "parquet", json=body, accept=PARQUET)


def _format_of(path: str) -> str | None:
    name = path.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".json"):
        return "json"
    return None


def _dataset_uri(run: Mapping[str, Any], source: TrackingRunSource) -> str:
    inputs = (run.get("inputs") or {}).get("dataset_inputs") or []
    datasets = [item.get("dataset") or {} for item in inputs]
    found = [
        d for d in datasets if d.get("name") == source.dataset and source.digest in (None, d.get("digest"))
    ]
    if not found:
        names = sorted({str(d.get("name")) for d in datasets})[:100]
        raise SourceNotFound(
            f"run {source.run_id!r} has no dataset {source.dataset!r}"
            + (f" with digest {source.digest!r}" if source.digest else ""),
            {"run_id": source.run_id, "dataset": source.dataset, "datasets": names},
        )
    raw = str(found[-1].get("source") or "")
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(parsed, dict):
        return str(parsed.get("uri") or parsed.get("path") or raw)
    return raw


def _artifact_key(uri: str, run_id: str) -> tuple[str | None, str]:
    """(run id whose artifact it is, or None for a full store key; the path): `runs:/<id>/<path>`,
    `mlflow-artifacts:/<key>`, or a path relative to the run's artifacts."""
    if uri.startswith("runs:/"):
        owner, _, path = uri.removeprefix("runs:/").strip("/").partition("/")
        return owner or run_id, path
    if uri.startswith("mlflow-artifacts:"):
        return None, uri.removeprefix("mlflow-artifacts:").strip("/")
    if "://" in uri or uri.startswith("/") or ":" in uri.split("/")[0]:
        raise InvalidReferenceSource(
            f"the dataset's source {uri[:200]!r} is outside the experiment tracking service; log the "
            "data as a run artifact (runs:/<run id>/<path>) or upload it here",
            {"source": uri[:1024]},
        )
    return run_id, uri


async def _run(peer: Peer, run_id: str) -> dict[str, Any]:
    answer = await peer.json("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
    run = answer.get("run") if isinstance(answer, dict) else None
    if not isinstance(run, dict):
        raise SourceFailed("the experiment tracking service answered a run without a body", {})
    return run


def _store_key(run: Mapping[str, Any], path: str) -> str:
    root = str((run.get("info") or {}).get("artifact_uri") or "")
    if not root.startswith("mlflow-artifacts:"):
        raise InvalidReferenceSource(
            f"the run's artifacts live at {root[:200]!r}, outside the experiment tracking service",
            {"artifact_uri": root[:1024]},
        )
    return f"{root.removeprefix('mlflow-artifacts:').strip('/')}/{path.strip('/')}"


async def _from_tracking(request: Request, source: TrackingRunSource) -> Data:
    peer = Peer(request, "experiment tracking service", request.app.state.settings.experiment_tracking_url)
    run = await _run(peer, source.run_id)
    uri = source.artifact_path or _dataset_uri(run, source)
    owner, path = _artifact_key(uri, source.run_id)
    if owner is not None:
        path = _store_key(run if owner == source.run_id else await _run(peer, owner), path)
    if not path.strip("/"):
        raise InvalidReferenceSource("the dataset names no file", {"source": uri[:1024]})
    url = "/api/2.0/mlflow-artifacts/artifacts/" + quote(path.strip("/"))
    return await peer.data("GET", url, _format_of(path))


async def fetch(request: Request, spec: ReferenceFromSource) -> Data:
    """The source's data, spooled (CSV, Parquet) or in memory (JSON, bounded by the JSON limit)."""
    if spec.source.feature_store is not None:
        return await _from_feature_store(request, spec.source.feature_store)
    assert spec.source.tracking_run is not None
    return await _from_tracking(request, spec.source.tracking_run)
