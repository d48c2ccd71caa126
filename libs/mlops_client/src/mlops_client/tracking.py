"""Client for experiment tracking (:8003): experiments, runs, params, metric histories, run artifacts."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from mlops_client._base import ServiceClient
from mlops_client.config import service_url
from mlops_client.errors import (
    ChecksumError,
    MlopsError,
    NotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from mlops_client.registry import CHUNK, Progress
from mlops_client.tracking_models import (
    ArtifactFile,
    Dataset,
    Experiment,
    LatestMetric,
    Metric,
    MetricPoint,
    Run,
    RunComparison,
    RunSource,
    TokenPage,
    UploadedArtifact,
    wire_number,
)

T = TypeVar("T")

# the service's per-request batch limits; larger batches are sent in several requests
METRICS_PER_REQUEST = 1000
PARAMS_PER_REQUEST = 100
HISTORY_FALLBACK_LIMIT = 1_000_000


def _q(part: str) -> str:
    return quote(part, safe="")


def _exp(experiment_id: str) -> str:
    return f"/api/experiments/{_q(experiment_id)}"


def _run(experiment_id: str, run_id: str) -> str:
    return f"{_exp(experiment_id)}/runs/{_q(run_id)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _filter_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _follow(fetch: Callable[[str | None], TokenPage[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return


def _shifted(progress: Progress, offset: int, total: int, done: int, _size: int | None) -> None:
    progress(offset + done, total)


class _FileBody:
    """A file as a request body that can be iterated again, so a retried PUT resends every byte."""

    def __init__(self, file: Path, progress: Progress | None):
        self.file, self.progress = file, progress
        self.size = file.stat().st_size
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        digest, sent = hashlib.sha256(), 0
        with open(self.file, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                sent += len(chunk)
                if self.progress:
                    self.progress(sent, self.size)
                yield chunk
        self.sha256 = digest.hexdigest()


class TrackingClient(ServiceClient):
    """Experiments, runs, params, metrics and run artifacts.

    >>> with TrackingClient() as tracking:        # MLOPS_EXPERIMENT_TRACKING_URL, MLOPS_API_KEY
    ...     with tracking.start_run(experiment="churn", parameters={"depth": 6}) as run:
    ...         run.log_metrics({"auc": 0.91}, step=1)
    ...         run.log_artifact("model.pkl")

    Only idempotent calls are retried (GETs, DELETEs, artifact PUTs, the read-only run search).
    Logging metrics, params and tags are POSTs and are sent once: a retry after a lost answer
    could log the same points twice.
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("experiment_tracking"), **kwargs)

    # experiments ------------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> Experiment:
        body = _present(
            {
                "name": name,
                "description": description,
                "tags": dict(tags or {}),
                "artifact_location": artifact_location,
            }
        )
        return Experiment.model_validate(self.request("POST", "/api/experiments", json=body).json())

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self.get_json(_exp(experiment_id)))

    def get_experiment_by_name(self, name: str) -> Experiment:
        """The experiment called `name`, deleted ones included."""
        if "/" not in name:
            return Experiment.model_validate(self.get_json(f"/api/experiments/by-name/{_q(name)}"))
        # the service's by-name route can't match an encoded "/", so look such names up by filter
        page = self.list_experiments(filter=f"name = {_filter_literal(name)}", view="ALL", limit=1)
        if not page.items:
            raise NotFoundError(404, "EXPERIMENT_NOT_FOUND", f"no experiment named {name!r}", {"name": name})
        return page.items[0]

    def get_or_create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> Experiment:
        """The experiment called `name`, created (with the other fields) if there is none.

        A deleted experiment is returned as it is (`lifecycle_stage == "deleted"`); restore it to use it.
        """
        try:
            return self.get_experiment_by_name(name)
        except NotFoundError:
            pass
        try:
            return self.create_experiment(
                name, description=description, tags=tags, artifact_location=artifact_location
            )
        except MlopsError as exc:
            if exc.code != "EXPERIMENT_EXISTS":
                raise
        return self.get_experiment_by_name(name)  # another client created it in between

    def list_experiments(
        self,
        *,
        filter: str | None = None,
        name_prefix: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        limit: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Experiment]:
        """One page; `filter` like ``"name LIKE 'churn%' and tags.team = 'growth'"``,
        `view` ACTIVE_ONLY, DELETED_ONLY or ALL."""
        data = self.get_json(
            "/api/experiments",
            filter=filter,
            name_prefix=name_prefix,
            order_by=order_by,
            view=view,
            limit=limit,
            page_token=page_token,
        )
        return TokenPage[Experiment].model_validate(data)

    def iter_experiments(self, **filters: Any) -> Iterator[Experiment]:
        """Every experiment matching `list_experiments` filters, page after page."""
        return _follow(lambda token: self.list_experiments(**filters, page_token=token))

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Rename, describe, or set tags (merged into the existing ones)."""
        body = _present({"name": name, "description": description, "tags": dict(tags) if tags else None})
        return Experiment.model_validate(self.request("PATCH", _exp(experiment_id), json=body).json())

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft delete: the experiment and its runs are hidden until restored."""
        self.request("DELETE", _exp(experiment_id))

    def restore_experiment(self, experiment_id: str) -> Experiment:
        response = self.request("POST", f"{_exp(experiment_id)}/restore", idempotent=True)
        return Experiment.model_validate(response.json())

    # runs -------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        source: RunSource | Mapping[str, str] | None = None,
        environment: Mapping[str, Any] | None = None,
        datasets: Sequence[Dataset | Mapping[str, Any]] | None = None,
    ) -> Run:
        """Create a RUNNING run. Parameter values are stored as their `str()` and never change."""
        body = _present(
            {
                "run_name": run_name,
                "parameters": {k: str(v) for k, v in (parameters or {}).items()},
                "tags": dict(tags or {}),
                "description": description,
                "start_time": start_time,
                "parent_run_id": parent_run_id,
                "user_id": user_id,
                "source": RunSource.model_validate(source).model_dump(exclude_none=True) if source else None,
                "environment": dict(environment) if environment is not None else None,
                "datasets": [Dataset.model_validate(d).model_dump(exclude_none=True) for d in datasets or []],
            }
        )
        response = self.request("POST", f"{_exp(experiment_id)}/runs", json=body)
        return Run.model_validate(response.json())

    def start_run(
        self,
        experiment: str | None = None,
        *,
        experiment_id: str | None = None,
        run_name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        source: RunSource | Mapping[str, str] | None = None,
        environment: Mapping[str, Any] | None = None,
        datasets: Sequence[Dataset | Mapping[str, Any]] | None = None,
    ) -> ActiveRun:
        """Start a run in `experiment` (a name; created if missing) or `experiment_id`.

        Use it as a context manager: the run ends FINISHED when the block completes, FAILED when it
        raises (KILLED on KeyboardInterrupt). Without `with`, call `run.end()` yourself.
        """
        if (experiment is None) == (experiment_id is None):
            raise ValueError("give either experiment (a name) or experiment_id")
        target = experiment_id or self.get_or_create_experiment(str(experiment)).id
        run = self.create_run(
            target,
            run_name=run_name,
            parameters=parameters,
            tags=tags,
            description=description,
            parent_run_id=parent_run_id,
            user_id=user_id,
            source=source,
            environment=environment,
            datasets=datasets,
        )
        return ActiveRun(self, run)

    def get_run(self, experiment_id: str, run_id: str) -> Run:
        return Run.model_validate(self.get_json(_run(experiment_id, run_id)))

    def update_run(
        self,
        experiment_id: str,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        description: str | None = None,
    ) -> Run:
        """Status goes RUNNING → FINISHED, FAILED or KILLED (end time defaults to now)."""
        body = _present(
            {"status": status, "end_time": end_time, "run_name": run_name, "description": description}
        )
        return Run.model_validate(self.request("PATCH", _run(experiment_id, run_id), json=body).json())

    def end_run(
        self, experiment_id: str, run_id: str, status: str = "FINISHED", *, end_time: int | None = None
    ) -> Run:
        return self.update_run(experiment_id, run_id, status=status, end_time=end_time)

    def delete_run(self, experiment_id: str, run_id: str) -> None:
        self.request("DELETE", _run(experiment_id, run_id))

    def restore_run(self, experiment_id: str, run_id: str) -> Run:
        response = self.request("POST", f"{_run(experiment_id, run_id)}/restore", idempotent=True)
        return Run.model_validate(response.json())

    def list_runs(
        self,
        experiment_id: str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        limit: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Run]:
        """One page of an experiment's runs; `filter` like ``"metrics.auc > 0.9 and params.depth = '6'"``."""
        data = self.get_json(
            f"{_exp(experiment_id)}/runs",
            filter=filter,
            order_by=order_by,
            view=view,
            limit=limit,
            page_token=page_token,
        )
        return TokenPage[Run].model_validate(data)

    def iter_runs(self, experiment_id: str, **filters: Any) -> Iterator[Run]:
        return _follow(lambda token: self.list_runs(experiment_id, **filters, page_token=token))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        max_results: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Run]:
        """One page of runs across experiments, e.g. ``order_by=["metrics.f1 DESC"]``."""
        body = _present(
            {
                "experiment_ids": list(experiment_ids),
                "filter": filter,
                "order_by": list(order_by or []),
                "view": view,
                "max_results": max_results,
                "page_token": page_token,
            }
        )
        # a read-only query sent as a POST: safe to retry
        response = self.request("POST", "/api/runs/search", json=body, idempotent=True)
        return TokenPage[Run].model_validate(response.json())

    def iter_search_runs(self, experiment_ids: Sequence[str], **filters: Any) -> Iterator[Run]:
        return _follow(lambda token: self.search_runs(experiment_ids, **filters, page_token=token))

    def best_run(
        self, experiment_id: str, metric: str, *, mode: str = "max", filter: str | None = None
    ) -> Run:
        """The run with the highest (`mode="min"`: lowest) latest value of `metric`."""
        data = self.get_json(f"{_exp(experiment_id)}/best-run", metric=metric, mode=mode, filter=filter)
        return Run.model_validate(data)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Params and latest metrics side by side (runs of any experiments)."""
        return RunComparison.model_validate(self.get_json("/api/runs/compare", run_ids=list(run_ids)))

    # params, tags, metrics --------------------------------------------------------------------
    def log_params(self, experiment_id: str, run_id: str, params: Mapping[str, Any]) -> Run:
        """Log params (stored as `str()`). Re-logging a key with another value is a ConflictError
        PARAM_IMMUTABLE; a batch over 100 is sent in several requests, each all-or-nothing."""
        run: Run | None = None
        for batch in _batches(params.items(), PARAMS_PER_REQUEST):
            body = {k: str(v) for k, v in batch}
            response = self.request("POST", f"{_run(experiment_id, run_id)}/params", json=body)
            run = Run.model_validate(response.json())
        return run or self.get_run(experiment_id, run_id)

    def set_tags(self, experiment_id: str, run_id: str, tags: Mapping[str, str]) -> Run:
        run: Run | None = None
        for batch in _batches(tags.items(), PARAMS_PER_REQUEST):
            response = self.request("POST", f"{_run(experiment_id, run_id)}/tags", json=dict(batch))
            run = Run.model_validate(response.json())
        return run or self.get_run(experiment_id, run_id)

    def delete_tag(self, experiment_id: str, run_id: str, key: str) -> None:
        self.request("DELETE", f"{_run(experiment_id, run_id)}/tags/{_q(key)}")

    def log_metric(
        self,
        experiment_id: str,
        run_id: str,
        key: str,
        value: float,
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> int:
        return self.log_metrics(experiment_id, run_id, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self,
        experiment_id: str,
        run_id: str,
        metrics: Mapping[str, float],
        *,
        step: int = 0,
        timestamp: int | None = None,
    ) -> int:
        """Log several metrics at one step; NaN and ±inf are fine. Returns how many were stored."""
        at = timestamp if timestamp is not None else _now_ms()
        points = (Metric(key=k, value=float(v), step=step, timestamp=at) for k, v in metrics.items())
        return self.log_metric_points(experiment_id, run_id, points)

    def log_metric_points(self, experiment_id: str, run_id: str, points: Iterable[Metric]) -> int:
        """Log points of any keys and steps: 1000 per request, each request all-or-nothing.

        Never retried automatically (a replay after a lost answer would store the points twice).
        """
        logged = 0
        for batch in _batches(points, METRICS_PER_REQUEST):
            now = _now_ms()
            body = {
                "metrics": [
                    {
                        "key": p.key,
                        "value": wire_number(p.value),
                        "step": p.step,
                        "timestamp": p.timestamp if p.timestamp is not None else now,
                    }
                    for p in batch
                ]
            }
            path = f"{_run(experiment_id, run_id)}/metrics"
            logged += int(self.request("POST", path, json=body, idempotent=False).json()["logged"])
        return logged

    def latest_metrics(self, experiment_id: str, run_id: str) -> dict[str, LatestMetric]:
        data = self.get_json(f"{_run(experiment_id, run_id)}/metrics")
        return {key: LatestMetric.model_validate(point) for key, point in data.items()}

    def iter_metric_history(
        self, experiment_id: str, run_id: str, key: str, *, page_size: int = 10_000
    ) -> Iterator[MetricPoint]:
        """Every logged point of one metric, in step order, page after page."""
        if "/" in key:  # the per-run route can't match an encoded "/"; the multi-run one takes a query
            yield from self.metric_histories([run_id], key)[run_id]
            return
        path = f"{_run(experiment_id, run_id)}/metrics/{_q(key)}/history"

        def fetch(token: str | None) -> TokenPage[MetricPoint]:
            data = self.get_json(path, limit=page_size, page_token=token)
            return TokenPage[MetricPoint].model_validate(data)

        yield from _follow(fetch)

    def metric_history(
        self, experiment_id: str, run_id: str, key: str, *, page_size: int = 10_000
    ) -> list[MetricPoint]:
        return list(self.iter_metric_history(experiment_id, run_id, key, page_size=page_size))

    def metric_histories(
        self, run_ids: Sequence[str], key: str, *, limit: int = HISTORY_FALLBACK_LIMIT
    ) -> dict[str, list[MetricPoint]]:
        """One metric's history for several runs (for plotting them together): run id → points."""
        data = self.get_json("/api/metrics/history", run_ids=list(run_ids), key=key, limit=limit)
        return {s["run_id"]: [MetricPoint.model_validate(p) for p in s["points"]] for s in data["series"]}

    # artifacts --------------------------------------------------------------------------------
    def upload_artifact(
        self,
        experiment_id: str,
        run_id: str,
        path: str | Path,
        *,
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> list[UploadedArtifact]:
        """Upload a file (streamed) or every file of a directory; sha256 is checked against the service.

        `artifact_path` is where a file lands (default: its name), or the folder a directory's
        files go under (default: the run's artifact root). Uploads are retried like other PUTs.
        """
        source = Path(path)
        if not source.is_dir():
            return [self._put_file(experiment_id, run_id, source, artifact_path or source.name, progress)]
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if not files:
            raise ValidationError(0, "EMPTY_DIRECTORY", f"{source} has no files to upload")
        total, done, uploaded = sum(f.stat().st_size for f in files), 0, []
        for file in files:
            rel = file.relative_to(source).as_posix()
            target = f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel
            shifted = partial(_shifted, progress, done, total) if progress else None
            uploaded.append(self._put_file(experiment_id, run_id, file, target, shifted))
            done += file.stat().st_size
        return uploaded

    def _put_file(
        self, experiment_id: str, run_id: str, file: Path, target: str, progress: Progress | None
    ) -> UploadedArtifact:
        body = _FileBody(file, progress)
        headers = {"Content-Length": str(body.size), "Content-Type": "application/octet-stream"}
        url = f"{_run(experiment_id, run_id)}/artifacts/{quote(target.strip('/'))}"
        stored = UploadedArtifact.model_validate(
            self.request("PUT", url, content=body, headers=headers).json()
        )
        if stored.sha256 != body.sha256:
            raise ChecksumError(0, "CHECKSUM_MISMATCH", f"{file} arrived corrupt as {target}; retry")
        return stored

    def list_artifacts(
        self, experiment_id: str, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> list[ArtifactFile]:
        """The files and folders directly under `path`, or with `recursive` every file below it."""
        base = (path or "").strip("/")
        query = {"path": base} if base else None
        data = self.request("GET", f"{_run(experiment_id, run_id)}/artifacts", params=query).json()
        entries = [
            ArtifactFile.model_validate({**f, "path": f"{base}/{f['path']}" if base else f["path"]})
            for f in data["files"]
        ]
        if not recursive:
            return entries
        found: list[ArtifactFile] = []
        for entry in entries:
            if entry.is_dir:
                found.extend(self.list_artifacts(experiment_id, run_id, entry.path, recursive=True))
            else:
                found.append(entry)
        return found

    def download_artifact(
        self,
        experiment_id: str,
        run_id: str,
        dest: str | Path,
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream one artifact file, or a folder (default: all of the run's artifacts), to `dest`.

        A file goes to `dest`, or into it when `dest` is a directory; a folder's files are written
        under the directory `dest` keeping their paths relative to the folder.
        """
        base = (path or "").strip("/")
        target = Path(dest)
        if base and not self._is_dir(experiment_id, run_id, base):
            if target.is_dir():
                target = target / PurePosixPath(base).name
            self._get_file(experiment_id, run_id, base, target, progress)
            return target
        files = self.list_artifacts(experiment_id, run_id, base or None, recursive=True)
        total, done = sum(f.file_size or 0 for f in files), 0
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            rel = PurePosixPath(file.path).relative_to(base) if base else PurePosixPath(file.path)
            if ".." in rel.parts or rel.is_absolute():
                raise ValidationError(0, "INVALID_ARTIFACT_PATH", f"refusing to write {file.path!r}")
            shifted = partial(_shifted, progress, done, total) if progress else None
            self._get_file(experiment_id, run_id, file.path, target.joinpath(*rel.parts), shifted)
            done += file.file_size or 0
        return target

    def _is_dir(self, experiment_id: str, run_id: str, path: str) -> bool:
        # asked of the parent's listing: the service can't answer a GET on a folder's path
        parent = PurePosixPath(path).parent.as_posix()
        for entry in self.list_artifacts(experiment_id, run_id, None if parent == "." else parent):
            if entry.path == path:
                return entry.is_dir
        raise NotFoundError(
            404, "ARTIFACT_NOT_FOUND", f"run {run_id} has no artifact {path!r}", {"path": path}
        )

    def _get_file(
        self, experiment_id: str, run_id: str, path: str, target: Path, progress: Progress | None
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_file = target.with_name(target.name + ".part")
        url = f"{_run(experiment_id, run_id)}/artifacts/{quote(path)}"
        try:
            with self.stream("GET", url) as response, open(partial_file, "wb") as fh:
                length = response.headers.get("content-length")
                total, done = (int(length) if length else None), 0
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except httpx.HTTPError as exc:
            partial_file.unlink(missing_ok=True)
            raise ServiceUnavailableError(
                0, "DOWNLOAD_INTERRUPTED", f"download of {path} broke off: {exc!r}"
            ) from exc
        except BaseException:
            partial_file.unlink(missing_ok=True)
            raise
        partial_file.replace(target)


class ActiveRun:
    """A run being logged to. As a context manager it ends FINISHED, or FAILED if the block raises.

    >>> with tracking.start_run(experiment="churn", run_name="xgb", parameters={"depth": 6}) as run:
    ...     for epoch in range(10):
    ...         run.log_metrics({"loss": train(epoch)}, step=epoch)
    """

    def __init__(self, client: TrackingClient, run: Run):
        self.client = client
        self.info = run  # as the service last answered; metrics are current after refresh()
        self.ended = False

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def experiment_id(self) -> str:
        return self.info.experiment_id

    def log_metric(self, key: str, value: float, *, step: int = 0, timestamp: int | None = None) -> None:
        self.client.log_metrics(self.experiment_id, self.id, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], *, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.client.log_metrics(self.experiment_id, self.id, metrics, step=step, timestamp=timestamp)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.info = self.client.log_params(self.experiment_id, self.id, params)

    def set_tag(self, key: str, value: str) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.info = self.client.set_tags(self.experiment_id, self.id, tags)

    def log_artifact(
        self, path: str | Path, *, artifact_path: str | None = None, progress: Progress | None = None
    ) -> list[UploadedArtifact]:
        return self.client.upload_artifact(
            self.experiment_id, self.id, path, artifact_path=artifact_path, progress=progress
        )

    def start_child_run(self, *, run_name: str | None = None, **fields: Any) -> ActiveRun:
        """A nested run in the same experiment (`fields` as for `TrackingClient.start_run`)."""
        return self.client.start_run(
            experiment_id=self.experiment_id, run_name=run_name, parent_run_id=self.id, **fields
        )

    def refresh(self) -> Run:
        self.info = self.client.get_run(self.experiment_id, self.id)
        return self.info

    def end(self, status: str = "FINISHED") -> Run:
        self.info = self.client.end_run(self.experiment_id, self.id, status)
        self.ended = True
        return self.info

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.ended:
            return
        if exc is None:
            self.end("FINISHED")
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.end(status)
        except MlopsError as failure:  # never hide the block's own exception behind this one
            exc.add_note(f"run {self.id} could not be marked {status}: {failure}")
