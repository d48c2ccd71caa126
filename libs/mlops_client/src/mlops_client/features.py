"""Client for the feature store (:8002): entities, feature sets, ingestion, materialization, serving."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, overload
from urllib.parse import quote

from mlops_client._base import RETRY_STATUS, ServiceClient, backoff
from mlops_client.config import service_url
from mlops_client.errors import MlopsError, ValidationError
from mlops_client.features_models import (
    Entity,
    Feature,
    FeatureService,
    FeatureSet,
    FeatureStatistics,
    HistoricalFeatures,
    IngestResult,
    MaterializationJob,
    OnlineFeatures,
    PushResult,
    SchemaVersion,
)
from mlops_client.models import Page
from mlops_client.registry import CHUNK, Progress

PARQUET = "application/vnd.apache.parquet"
FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
PUSH_ROWS_PER_REQUEST = 1000  # the service's limit per push

Rows = Sequence[Mapping[str, Any]]
Entities = Sequence[str | int | Mapping[str, str | int]] | Mapping[str, Sequence[str | int]]
FeatureList = Sequence[Feature | Mapping[str, str]] | Mapping[str, str]


class MaterializationFailedError(MlopsError):
    """A materialization job ended FAILED; `details["job"]` is the job."""


def _q(part: str) -> str:
    return quote(part, safe="")


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _wire(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(body: Any) -> dict[str, Any]:
    """Request kwargs for a JSON body that may hold datetimes (sent as ISO 8601)."""
    return {
        "content": json.dumps(body, default=_wire).encode(),
        "headers": {"Content-Type": "application/json"},
    }


def _features(features: FeatureList) -> list[dict[str, str]]:
    if isinstance(features, Mapping):
        return [{"name": name, "type": type_} for name, type_ in features.items()]
    return [Feature.model_validate(f).model_dump(include={"name", "type", "description"}) for f in features]


def _file_format(path: Path) -> str:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(0, "UNSUPPORTED_FILE", f"{path.name}: give a .csv or .parquet file")
    return fmt


class _FileBody:
    """A file streamed as a request body; iterable again, so a retried request resends every byte."""

    def __init__(self, file: Path, progress: Progress | None):
        self.file, self.progress = file, progress
        self.size = file.stat().st_size

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        with open(self.file, "rb") as fh:
            while chunk := fh.read(CHUNK):
                sent += len(chunk)
                if self.progress:
                    self.progress(sent, self.size)
                yield chunk

    def request(self) -> dict[str, Any]:
        # octet-stream (format in the query) is the upload path: not bounded by the JSON body limit
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(self.size)}
        return {"content": self, "headers": headers}


class FeatureStoreClient(ServiceClient):
    """Define features, load rows, materialize them, and read them online or as training data.

    >>> with FeatureStoreClient() as fs:          # MLOPS_FEATURE_STORE_URL, MLOPS_API_KEY
    ...     fs.create_entity("user", join_keys=["user_id"])
    ...     fs.create_feature_set("user_features", {"age": "int"}, entity="user", ttl="7d")
    ...     fs.ingest("user_features", "users.parquet")
    ...     fs.wait_for_job(fs.materialize("user_features").id)
    ...     fs.get_online_features(["u1", "u2"], features=["user_features:age"])

    Only idempotent calls are retried: GETs, PUTs, DELETEs and the read-only POSTs (online and
    historical retrieval). Creating, ingesting, pushing and materializing are sent once.
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("feature_store"), **kwargs)

    # entities ---------------------------------------------------------------------------------
    def create_entity(
        self,
        name: str,
        *,
        join_keys: Sequence[str] | None = None,
        value_type: str = "string",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> Entity:
        """`join_keys` default to ``[name]``; `value_type` is "string" or "int"."""
        body = _present(
            {
                "name": name,
                "join_keys": list(join_keys) if join_keys else None,
                "value_type": value_type,
                "description": description,
                "tags": dict(tags or {}),
            }
        )
        return Entity.model_validate(self.request("POST", "/api/entities", json=body).json())

    def get_entity(self, name: str) -> Entity:
        return Entity.model_validate(self.get_json(f"/api/entities/{_q(name)}"))

    def list_entities(self, *, limit: int = 100, offset: int = 0) -> Page[Entity]:
        return Page[Entity].model_validate(self.get_json("/api/entities", limit=limit, offset=offset))

    def iter_entities(self) -> Iterator[Entity]:
        return _pages(lambda offset: self.list_entities(offset=offset))

    def delete_entity(self, name: str) -> None:
        """A ConflictError IN_USE while feature sets use it."""
        self.request("DELETE", f"/api/entities/{_q(name)}")

    # feature sets -----------------------------------------------------------------------------
    def create_feature_set(
        self,
        name: str,
        features: FeatureList,
        *,
        entity: str | None = None,
        ttl: str | int | None = None,
        description: str = "",
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> FeatureSet:
        """Version 1 of a feature set. `features` is ``{"age": "int"}`` or a list of `Feature`s;
        `ttl` is seconds or text like ``"24h"``, ``"7d"``; without `entity` the set belongs to
        the `default` entity (join key `entity_id`)."""
        body = _present(
            {
                "name": name,
                "entity": entity,
                "features": _features(features),
                "ttl": ttl,
                "description": description,
                "owner": owner,
                "tags": dict(tags or {}),
            }
        )
        return FeatureSet.model_validate(self.request("POST", "/api/feature-sets", json=body).json())

    def apply_feature_set(
        self,
        name: str,
        features: FeatureList,
        *,
        entity: str | None = None,
        ttl: str | int | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        breaking: bool = False,
    ) -> FeatureSet:
        """Create the set, or bring it to this definition (as `feast apply`): a new schema version
        when the features changed; removing or retyping one needs `breaking=True`."""
        body = _present(
            {
                "entity": entity,
                "features": _features(features),
                "ttl": ttl,
                "description": description,
                "owner": owner,
                "tags": dict(tags) if tags is not None else None,
                "breaking": breaking,
            }
        )
        response = self.request("PUT", f"/api/feature-sets/{_q(name)}", json=body)
        return FeatureSet.model_validate(response.json())

    def get_feature_set(self, name: str, *, version: int | None = None) -> FeatureSet:
        return FeatureSet.model_validate(self.get_json(f"/api/feature-sets/{_q(name)}", version=version))

    def list_feature_sets(
        self,
        *,
        entity: str | None = None,
        owner: str | None = None,
        tags: Sequence[str] | None = None,
        name_prefix: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[FeatureSet]:
        """One page; `tags` are ``"key"`` or ``"key=value"``, all of which must match."""
        data = self.get_json(
            "/api/feature-sets",
            entity=entity,
            owner=owner,
            tags=tags,
            name_prefix=name_prefix,
            limit=limit,
            offset=offset,
        )
        return Page[FeatureSet].model_validate(data)

    def iter_feature_sets(self, **filters: Any) -> Iterator[FeatureSet]:
        return _pages(lambda offset: self.list_feature_sets(**filters, offset=offset))

    def update_feature_set(
        self,
        name: str,
        *,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        ttl: str | int | None = None,
    ) -> FeatureSet:
        """Description, owner, tags, TTL (``ttl=0`` removes it). Schema changes are `add_version`."""
        body = _present(
            {
                "description": description,
                "owner": owner,
                "tags": dict(tags) if tags is not None else None,
                "ttl": ttl,
            }
        )
        response = self.request("PATCH", f"/api/feature-sets/{_q(name)}", json=body)
        return FeatureSet.model_validate(response.json())

    def delete_feature_set(self, name: str, *, force: bool = False) -> None:
        """Deletes every version, row and online value; `force` even if feature services use it."""
        self.request("DELETE", f"/api/feature-sets/{_q(name)}", params={"force": "true"} if force else None)

    def add_version(
        self, name: str, features: FeatureList, *, breaking: bool = False, change: str = ""
    ) -> SchemaVersion:
        """A new schema version from the whole new feature list."""
        body = {"features": _features(features), "breaking": breaking, "change": change}
        response = self.request("POST", f"/api/feature-sets/{_q(name)}/versions", json=body)
        return SchemaVersion.model_validate(response.json())

    def versions(self, name: str) -> list[SchemaVersion]:
        data = self.get_json(f"/api/feature-sets/{_q(name)}/versions")
        return [SchemaVersion.model_validate(v) for v in data]

    # feature services -------------------------------------------------------------------------
    def create_feature_service(
        self,
        name: str,
        features: Sequence[str],
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> FeatureService:
        """Pins `set:feature` / `set:*` references to their sets' current schema versions; a new
        service version when the features differ from the latest."""
        body = {
            "name": name,
            "features": list(features),
            "description": description,
            "tags": dict(tags or {}),
        }
        response = self.request("POST", "/api/feature-services", json=body)
        return FeatureService.model_validate(response.json())

    def get_feature_service(self, name: str, *, version: int | None = None) -> FeatureService:
        data = self.get_json(f"/api/feature-services/{_q(name)}", version=version)
        return FeatureService.model_validate(data)

    def list_feature_services(self, *, limit: int = 100, offset: int = 0) -> Page[FeatureService]:
        data = self.get_json("/api/feature-services", limit=limit, offset=offset)
        return Page[FeatureService].model_validate(data)

    def delete_feature_service(self, name: str) -> None:
        self.request("DELETE", f"/api/feature-services/{_q(name)}")

    # ingestion --------------------------------------------------------------------------------
    def ingest(
        self,
        name: str,
        rows: Rows | str | Path,
        *,
        version: int | None = None,
        progress: Progress | None = None,
    ) -> IngestResult:
        """Write rows to the offline store, all or none (a ValidationError TYPE_MISMATCH names
        each bad row). `rows` are dicts (join keys, `event_timestamp`, features), or a .csv or
        .parquet file streamed as it is; `progress(bytes_sent, bytes_total)` follows a file."""
        path = f"/api/feature-sets/{_q(name)}/rows"
        if isinstance(rows, str | Path):
            file = Path(rows)
            params = _present({"version": version, "format": _file_format(file)})
            body = _FileBody(file, progress).request()
            response = self.request("POST", path, params=params, idempotent=False, **body)
        else:
            params = _present({"version": version})
            response = self.request("POST", path, params=params, **_json({"rows": list(rows)}))
        return IngestResult.model_validate(response.json())

    def push(self, name: str, rows: Rows, *, version: int | None = None) -> PushResult:
        """Write rows to the offline store and, where they are the newest, the online store.
        More than 1000 rows go in several requests (each all or none); the counts are summed."""
        rows, results = list(rows), []
        if not rows:
            raise ValidationError(0, "NO_ROWS", "no rows to push")
        for i in range(0, len(rows), PUSH_ROWS_PER_REQUEST):
            batch = {"rows": rows[i : i + PUSH_ROWS_PER_REQUEST]}
            response = self.request(
                "POST",
                f"/api/feature-sets/{_q(name)}/push",
                params=_present({"version": version}),
                **_json(batch),
            )
            results.append(PushResult.model_validate(response.json()))
        return _summed(results)

    # materialization --------------------------------------------------------------------------
    def materialize(
        self,
        name: str,
        *,
        start: datetime | str | float | None = None,
        end: datetime | str | float | None = None,
        incremental: bool = False,
    ) -> MaterializationJob:
        """Start copying the newest offline rows of an event-time range (default: up to now) into
        the online store; `incremental` continues from the last materialized point."""
        body = _present({"start": start, "end": end, "incremental": incremental or None})
        response = self.request("POST", f"/api/feature-sets/{_q(name)}/materialize", **_json(body))
        return MaterializationJob.model_validate(response.json())

    def get_job(self, job_id: int) -> MaterializationJob:
        return MaterializationJob.model_validate(self.get_json(f"/api/materialization-jobs/{job_id}"))

    def list_jobs(
        self,
        *,
        feature_set: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[MaterializationJob]:
        """Newest first."""
        data = self.get_json(
            "/api/materialization-jobs", feature_set=feature_set, status=status, limit=limit, offset=offset
        )
        return Page[MaterializationJob].model_validate(data)

    def wait_for_job(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        poll_interval: float = 0.5,
        progress: Progress | None = None,
        raise_on_failure: bool = True,
    ) -> MaterializationJob:
        """Poll until the job ends; `progress(rows_done, rows_total)` is called after every poll.
        A FAILED job raises MaterializationFailedError (unless `raise_on_failure=False`); a job
        still running after `timeout` seconds raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if progress:
                progress(job.rows_done, job.rows_total)
            if job.finished:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"materialization job {job_id} is still {job.status} after {timeout}s")
            time.sleep(poll_interval)
        if job.status == "FAILED" and raise_on_failure:
            raise MaterializationFailedError(
                0, "MATERIALIZATION_FAILED", f"job {job_id}: {job.error}", {"job": job.model_dump()}
            )
        return job

    # serving ----------------------------------------------------------------------------------
    def online(
        self,
        entities: Entities,
        *,
        features: Sequence[str] | None = None,
        feature_set: str | None = None,
        feature_service: str | None = None,
        feature_service_version: int | None = None,
    ) -> OnlineFeatures:
        """Online values, statuses and event times, one result per entity in request order.
        `entities` are keys ``["u1"]``, objects ``[{"user_id": "u1"}]`` or columns
        ``{"user_id": ["u1"]}``; give `features` (``set:feature``, ``set:*``, bare names, looked
        up in `feature_set`) or a `feature_service`."""
        if (features is None) == (feature_service is None):
            raise ValueError("give either features or feature_service")
        body = _present(
            {
                "entities": dict(entities) if isinstance(entities, Mapping) else list(entities),
                "features": list(features) if features is not None else None,
                "feature_set": feature_set,
                "feature_service": feature_service,
                "feature_service_version": feature_service_version,
            }
        )
        response = self.request("POST", "/api/features/online", json=body, idempotent=True)
        return OnlineFeatures.model_validate(response.json())

    def get_online_features(self, entities: Entities, **kwargs: Any) -> list[dict[str, Any]]:
        """Just the values of `online(...)`: one dict per entity (None unless PRESENT)."""
        return self.online(entities, **kwargs).values()

    def serve(
        self, entities: Sequence[str], features: Sequence[str], *, feature_set: str | None = None
    ) -> OnlineFeatures:
        """`GET /api/features/serve`: the same answer as `online` for a few single-key entities."""
        params = _present(
            {"entities": ",".join(entities), "features": ",".join(features), "feature_set": feature_set}
        )
        return OnlineFeatures.model_validate(self.get_json("/api/features/serve", **params))

    @overload
    def historical(
        self,
        entity_rows: Rows | str | Path,
        *,
        features: Sequence[str] | None = ...,
        feature_service: str | None = ...,
        out_path: None = None,
    ) -> HistoricalFeatures: ...

    @overload
    def historical(
        self,
        entity_rows: Rows | str | Path,
        *,
        features: Sequence[str] | None = ...,
        feature_service: str | None = ...,
        out_path: str | Path,
    ) -> Path: ...

    def historical(
        self,
        entity_rows: Rows | str | Path,
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        out_path: str | Path | None = None,
    ) -> HistoricalFeatures | Path:
        """Point-in-time-correct training data: each entity row (join keys, `event_timestamp`,
        any other columns) joined with the feature values as they were at its timestamp; rows
        without a match are kept with nulls. `entity_rows` are dicts or a .parquet/.csv file.
        Answers columns and rows, or with `out_path` writes the result there as Parquet."""
        if (features is None) == (feature_service is None):
            raise ValueError("give either features or feature_service")
        kwargs: dict[str, Any]
        if isinstance(entity_rows, str | Path):
            file = Path(entity_rows)
            refs = list(features) if features is not None else None
            query = {"features": refs, "feature_service": feature_service, "format": _file_format(file)}
            kwargs = {"params": _present(query), **_FileBody(file, None).request()}
        else:
            refs = list(features) if features is not None else None
            body = {"entity_rows": list(entity_rows), "features": refs, "feature_service": feature_service}
            kwargs = _json(_present(body))
        if out_path is None:
            response = self.request("POST", "/api/features/historical", idempotent=True, **kwargs)
            return HistoricalFeatures.model_validate(response.json())
        kwargs["headers"]["Accept"] = PARQUET
        return self._download("/api/features/historical", Path(out_path), kwargs)

    def _download(self, path: str, target: Path, kwargs: dict[str, Any]) -> Path:
        """Stream a read-only POST's answer to `target`, retried like `request` retries reads."""
        partial = target.with_name(target.name + ".part")
        for attempt in range(1, self.retries + 1):
            try:
                with self.stream("POST", path, **kwargs) as response, open(partial, "wb") as fh:
                    for chunk in response.iter_bytes(CHUNK):
                        fh.write(chunk)
                break
            except MlopsError as exc:
                partial.unlink(missing_ok=True)
                if attempt == self.retries or exc.status not in (0, *RETRY_STATUS):
                    raise
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            backoff(attempt)
        partial.replace(target)
        return target

    def statistics(self, name: str, *, version: int | None = None) -> FeatureStatistics:
        data = self.get_json(f"/api/feature-sets/{_q(name)}/statistics", version=version)
        return FeatureStatistics.model_validate(data)


def _pages(fetch: Callable[[int], Page[Any]]) -> Iterator[Any]:
    offset: int | None = 0
    while offset is not None:
        page = fetch(offset)
        yield from page.items
        offset = page.next_offset


def _summed(results: list[PushResult]) -> PushResult:
    if len(results) == 1:
        return results[0]
    starts = [t for r in results if (t := r.event_time.get("min"))]
    ends = [t for r in results if (t := r.event_time.get("max"))]
    return results[-1].model_copy(
        update={
            "rows_written": sum(r.rows_written for r in results),
            "online_updated": sum(r.online_updated for r in results),
            "event_time": {"min": min(starts, default=None), "max": max(ends, default=None)},
        }
    )
