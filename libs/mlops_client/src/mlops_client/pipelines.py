"""Client for the pipeline orchestrator (:8004): pipelines, runs, task logs, schedules, triggers."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from mlops_client._base import ServiceClient
from mlops_client.config import service_url
from mlops_client.errors import MlopsError, NotFoundError, ValidationError
from mlops_client.models import Page
from mlops_client.pipelines_models import (
    AlertRoute,
    Backfill,
    LogChunk,
    Pipeline,
    PipelineRun,
    PipelineVersion,
    Schedule,
    Webhook,
)

T = TypeVar("T", bound=BaseModel)
RunCallback = Callable[[PipelineRun], None]

PARAMETER_CODES = frozenset({"UNKNOWN_PARAMETER", "PARAMETER_TYPE_ERROR", "MISSING_PARAMETER"})
# a followed log stream can be silent for a long time (a task that prints nothing)
FOLLOW_READ_TIMEOUT = 300.0
UPLOAD_CHUNK = 1024 * 1024
FOLLOW_IDLE_SECONDS = 0.2


class InvalidPipelineError(ValidationError):
    """422 on a definition: INVALID_PIPELINE, DUPLICATE_TASK, UNKNOWN_DEPENDENCY, CYCLE,
    UNKNOWN_PARAMETER, UNKNOWN_TASK_REFERENCE, REFERENCE_NOT_UPSTREAM or INVALID_REFERENCE;
    `details` names the task and field."""


class PipelineParameterError(ValidationError):
    """422 on a trigger: UNKNOWN_PARAMETER, PARAMETER_TYPE_ERROR or MISSING_PARAMETER."""


class PipelineRunFailedError(MlopsError):
    """A run ended failed (code RUN_FAILED) or cancelled (RUN_CANCELLED); `.run` is the run, with
    its tasks and their errors, and the message says which tasks failed and why."""

    def __init__(self, run: PipelineRun):
        code = "RUN_CANCELLED" if run.state == "cancelled" else "RUN_FAILED"
        message = f"run {run.id} of {run.pipeline} {run.state}: {run.failure()}"
        super().__init__(0, code, message, {"run": run.model_dump(mode="json")})
        self.run = run


def _q(part: str) -> str:
    return quote(part, safe="")


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _when(value: datetime | date | str) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


def _items(data: Any, model: type[T]) -> list[T]:
    """A list answered bare or as a page's items."""
    items = data["items"] if isinstance(data, dict) else data
    return [model.model_validate(item) for item in items]


def _pages(fetch: Callable[[int], Page[T]]) -> Iterator[T]:
    offset: int | None = 0
    while offset is not None:
        page = fetch(offset)
        yield from page.items
        offset = page.next_offset


def _definition(definition: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    if isinstance(definition, BaseModel):
        # only what was set: the service fills in its own defaults (and hashes the result)
        return definition.model_dump(mode="json", exclude_unset=True)
    return dict(definition)


@contextmanager
def _refined(error: type[ValidationError], codes: frozenset[str] | None = None) -> Iterator[None]:
    """Re-raise a 422 (with one of `codes`) as the more precise `error`."""
    try:
        yield
    except ValidationError as exc:
        if exc.status != 422 or (codes is not None and exc.code not in codes):
            raise
        raise error(exc.status, exc.code, exc.message, exc.details) from None


class PipelinesClient(ServiceClient):
    """Define pipelines, run them, follow their tasks and logs, schedule and trigger them.

    >>> with PipelinesClient() as pipelines:     # MLOPS_PIPELINE_ORCHESTRATOR_URL, MLOPS_API_KEY
    ...     pipelines.create_pipeline({"name": "nightly", "tasks": [
    ...         {"name": "hello", "kind": "shell", "command": "echo hello"}]})
    ...     run = pipelines.trigger("nightly")
    ...     pipelines.wait_for_run(run.id)          # raises PipelineRunFailedError if it fails
    ...     text, offset, state = pipelines.logs(run.id, "hello")

    Only idempotent calls are retried: GETs, DELETEs, schedule updates, and creating a pipeline
    (sending the same definition twice stores one version). Triggers, backfills, webhook calls,
    cancel and retry are sent once: a retry after a lost answer could start a run twice.
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("pipeline_orchestrator"), **kwargs)

    # pipelines --------------------------------------------------------------------------------
    def create_pipeline(self, definition: Mapping[str, Any] | BaseModel) -> Pipeline:
        """Store a definition (a dict or a `PipelineDefinition`): a new pipeline, the next version
        of an existing one when the definition differs, or the current version when it is the
        same; `.created` says whether anything was stored. A bad definition raises
        InvalidPipelineError naming the task and field."""
        with _refined(InvalidPipelineError):
            response = self.request("POST", "/api/pipelines", json=_definition(definition), idempotent=True)
        pipeline = Pipeline.model_validate(response.json())
        pipeline.created = response.status_code == 201
        return pipeline

    def get_pipeline(self, pipeline: str) -> Pipeline:
        """A pipeline (by name or id) with its latest definition."""
        return Pipeline.model_validate(self.get_json(f"/api/pipelines/{_q(pipeline)}"))

    def list_pipelines(
        self, *, name_prefix: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Pipeline]:
        """One page, without definitions."""
        data = self.get_json("/api/pipelines", name_prefix=name_prefix, limit=limit, offset=offset)
        return Page[Pipeline].model_validate(data)

    def iter_pipelines(self, **filters: Any) -> Iterator[Pipeline]:
        return _pages(lambda offset: self.list_pipelines(**filters, offset=offset))

    def list_versions(self, pipeline: str, *, limit: int = 100, offset: int = 0) -> Page[PipelineVersion]:
        """One page of versions with their definitions, newest first."""
        data = self.get_json(f"/api/pipelines/{_q(pipeline)}/versions", limit=limit, offset=offset)
        return Page[PipelineVersion].model_validate(data)

    def versions(self, pipeline: str) -> list[PipelineVersion]:
        """Every version, newest first."""
        return list(_pages(lambda offset: self.list_versions(pipeline, offset=offset)))

    def get_version(self, pipeline: str, version: int) -> PipelineVersion:
        data = self.get_json(f"/api/pipelines/{_q(pipeline)}/versions/{int(version)}")
        return PipelineVersion.model_validate(data)

    def delete_pipeline(self, pipeline: str) -> None:
        """Delete a pipeline with its versions, runs and schedules; a ConflictError
        PIPELINE_HAS_ACTIVE_RUNS while runs are active."""
        self.request("DELETE", f"/api/pipelines/{_q(pipeline)}")

    # runs -------------------------------------------------------------------------------------
    def trigger(
        self,
        pipeline: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
    ) -> PipelineRun:
        """Start a run of the latest version (or `version`). Parameters are checked against the
        definition: PipelineParameterError UNKNOWN_PARAMETER, PARAMETER_TYPE_ERROR or
        MISSING_PARAMETER. Sent once, never retried."""
        body = {"parameters": dict(parameters or {}), "version": version}
        with _refined(PipelineParameterError, PARAMETER_CODES):
            response = self.request("POST", f"/api/pipelines/{_q(pipeline)}/runs", json=body)
        return PipelineRun.model_validate(response.json())

    def get_run(self, run_id: str) -> PipelineRun:
        """A run with its tasks and their attempts."""
        return PipelineRun.model_validate(self.get_json(f"/api/runs/{_q(run_id)}"))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        state: str | None = None,
        trigger: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page[PipelineRun]:
        """One page of runs (without tasks), newest first."""
        data = self.get_json(
            "/api/runs", pipeline=pipeline, state=state, trigger=trigger, limit=limit, offset=offset
        )
        return Page[PipelineRun].model_validate(data)

    def iter_runs(self, **filters: Any) -> Iterator[PipelineRun]:
        return _pages(lambda offset: self.list_runs(**filters, offset=offset))

    def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 0.5,
        progress: RunCallback | None = None,
        raise_on_failure: bool = True,
    ) -> PipelineRun:
        """Poll until the run ends; `progress(run)` is called after every poll (`run.progress`
        has tasks done/total). A failed or cancelled run raises PipelineRunFailedError (unless
        `raise_on_failure=False`); a run still going after `timeout` seconds raises TimeoutError.
        Polls start fast and slow down to `poll_interval`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(0.05, poll_interval)
        while True:
            run = self.get_run(run_id)
            if progress:
                progress(run)
            if run.finished:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.state} after {timeout}s")
            time.sleep(interval)
            interval = min(interval * 2, poll_interval)
        if raise_on_failure and not run.succeeded:
            raise PipelineRunFailedError(run)
        return run

    def cancel_run(self, run_id: str) -> PipelineRun:
        """Stop the run's running tasks (state cancelling, then cancelled); a ConflictError
        RUN_FINISHED when it already ended."""
        return PipelineRun.model_validate(self.request("POST", f"/api/runs/{_q(run_id)}/cancel").json())

    def retry_run(self, run_id: str) -> PipelineRun:
        """Run a failed or cancelled run's failed, upstream-failed and cancelled tasks again (and
        their downstream); succeeded tasks keep their outputs. A ConflictError RUN_NOT_RETRYABLE
        for runs that did not fail."""
        return PipelineRun.model_validate(self.request("POST", f"/api/runs/{_q(run_id)}/retry").json())

    # logs -------------------------------------------------------------------------------------
    def _logs_path(self, run_id: str, task: str) -> str:
        return f"/api/runs/{_q(run_id)}/tasks/{_q(task)}/logs"

    def logs(self, run_id: str, task: str, *, attempt: int | None = None, offset: int = 0) -> LogChunk:
        """A task attempt's log from byte `offset` (the latest attempt unless `attempt` is
        given): ``text, next_offset, attempt_state``. The service answers a piece at a time (1 MiB
        by default): ask again from `next_offset` for more; a character split at the end is left
        for the next call. A NotFoundError ATTEMPT_NOT_FOUND while the task has not started."""
        params = _present({"attempt": attempt, "offset": offset})
        response = self.request("GET", self._logs_path(run_id, task), params=params)
        state = response.headers.get("X-Attempt-State")
        end = int(response.headers.get("X-Next-Offset", offset + len(response.content)))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        text = decoder.decode(response.content, final=False)
        held = len(decoder.getstate()[0])  # a character cut at the end of the piece
        return LogChunk(text, end - held, state)

    def _attempt_to_follow(self, run_id: str, task: str) -> int | None:
        while True:
            run = self.get_run(run_id)
            try:
                found = run.task(task)
            except KeyError:
                raise NotFoundError(404, "TASK_NOT_FOUND", f"run {run_id} has no task {task!r}") from None
            if found.attempts:
                return max(a.number for a in found.attempts)
            if found.finished:
                return None
            time.sleep(FOLLOW_IDLE_SECONDS)

    def follow_logs(
        self, run_id: str, task: str, *, attempt: int | None = None, offset: int = 0
    ) -> Iterator[str]:
        """The log's text as it is written, until the attempt ends (like `tail -f`). Without
        `attempt`, the task's latest attempt (waiting for its first one to start; nothing when
        the task ends without one, e.g. skipped). A dropped or long-silent connection is resumed
        from the last byte received."""
        attempt = attempt or self._attempt_to_follow(run_id, task)
        if attempt is None:
            return
        path = self._logs_path(run_id, task)
        timeout = httpx.Timeout(FOLLOW_READ_TIMEOUT, connect=self._http.timeout.connect)
        while True:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            params = _present({"attempt": attempt, "offset": offset, "follow": "true"})
            start = offset
            try:
                with self.stream("GET", path, params=params, timeout=timeout) as response:
                    for chunk in response.iter_bytes():
                        offset += len(chunk)
                        if text := decoder.decode(chunk):
                            yield text
            except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError):
                offset -= len(decoder.getstate()[0])
                continue
            offset -= len(decoder.getstate()[0])  # a split character is read again with the rest
            # the stream ended: make sure it is because the attempt did
            rest = self.logs(run_id, task, attempt=attempt, offset=offset)
            if rest.text:
                yield rest.text
            offset = max(offset, rest.next_offset)
            if rest.finished or rest.attempt_state is None:
                return
            if offset == start:
                time.sleep(FOLLOW_IDLE_SECONDS)  # nothing came: do not spin on a service that closes early

    # schedules and backfills ------------------------------------------------------------------
    def create_schedule(
        self,
        pipeline: str,
        cron: str,
        *,
        timezone: str = "UTC",
        parameters: Mapping[str, Any] | None = None,
        catchup: bool = False,
        enabled: bool = True,
    ) -> Schedule:
        """Run the pipeline on a cron schedule (``"0 3 * * *"``) in an IANA `timezone`; with
        `catchup` the runs missed while the service was down are started too."""
        body = {
            "cron": cron,
            "timezone": timezone,
            "parameters": dict(parameters or {}),
            "catchup": catchup,
            "enabled": enabled,
        }
        response = self.request("POST", f"/api/pipelines/{_q(pipeline)}/schedules", json=body)
        return Schedule.model_validate(response.json())

    def get_schedule(self, schedule_id: str) -> Schedule:
        return Schedule.model_validate(self.get_json(f"/api/schedules/{_q(schedule_id)}"))

    def list_schedules(
        self, *, pipeline: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Schedule]:
        data = self.get_json("/api/schedules", pipeline=pipeline, limit=limit, offset=offset)
        return Page[Schedule].model_validate(data)

    def iter_schedules(self, **filters: Any) -> Iterator[Schedule]:
        return _pages(lambda offset: self.list_schedules(**filters, offset=offset))

    def update_schedule(
        self,
        schedule_id: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        catchup: bool | None = None,
        enabled: bool | None = None,
    ) -> Schedule:
        """Change the fields given (e.g. ``enabled=False`` pauses it)."""
        body = _present(
            {
                "cron": cron,
                "timezone": timezone,
                "parameters": dict(parameters) if parameters is not None else None,
                "catchup": catchup,
                "enabled": enabled,
            }
        )
        response = self.request("PATCH", f"/api/schedules/{_q(schedule_id)}", json=body, idempotent=True)
        return Schedule.model_validate(response.json())

    def delete_schedule(self, schedule_id: str) -> None:
        self.request("DELETE", f"/api/schedules/{_q(schedule_id)}")

    def backfill(
        self,
        pipeline: str,
        start: datetime | date | str,
        end: datetime | date | str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Backfill:
        """One run (trigger "backfill", with its `logical_date`) per `cron` tick from `start`
        to `end`, both included (a `date` or bare "2026-11-07" is the whole day in the cron's
        timezone); `cron` defaults to the pipeline's first schedule. Declared string parameters
        `ds` (the run's day) and `logical_date` get each run's own unless given. Runs beyond the
        pipeline's `max_active_runs` wait queued."""
        body = _present(
            {
                "start": _when(start),
                "end": _when(end),
                "cron": cron,
                "timezone": timezone,
                "parameters": dict(parameters or {}),
            }
        )
        with _refined(PipelineParameterError, PARAMETER_CODES):
            response = self.request("POST", f"/api/pipelines/{_q(pipeline)}/backfill", json=body)
        return Backfill.model_validate(response.json())

    # webhooks and alerts ----------------------------------------------------------------------
    def create_webhook(self, pipeline: str, *, parameters: Mapping[str, Any] | None = None) -> Webhook:
        """A secret URL that starts the pipeline when POSTed to (see `fire_webhook`); the
        caller's parameters are merged over `parameters`."""
        body = {"parameters": dict(parameters or {})}
        response = self.request("POST", f"/api/pipelines/{_q(pipeline)}/webhooks", json=body)
        return Webhook.model_validate(response.json())

    def list_webhooks(self, pipeline: str) -> list[Webhook]:
        return _items(self.get_json(f"/api/pipelines/{_q(pipeline)}/webhooks"), Webhook)

    def delete_webhook(self, webhook_id: str) -> None:
        self.request("DELETE", f"/api/webhooks/{_q(webhook_id)}")

    def fire_webhook(self, token: str, parameters: Mapping[str, Any] | None = None) -> PipelineRun:
        """Start a run through a webhook's token (trigger "webhook"). Sent once."""
        body = {"parameters": dict(parameters or {})}
        with _refined(PipelineParameterError, PARAMETER_CODES):
            response = self.request("POST", f"/api/triggers/webhooks/{_q(token)}", json=body)
        return PipelineRun.model_validate(response.json())

    def create_alert_route(
        self,
        alertname: str,
        pipeline: str,
        *,
        match: Mapping[str, str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        cooldown_seconds: float | None = None,
    ) -> AlertRoute:
        """Start `pipeline` when AlertManager reports `alertname` firing with labels matching
        `match`; parameters may use ``{{ alert.labels.<label> }}``. A route is skipped while its
        last run is active or within `cooldown_seconds`."""
        body = _present(
            {
                "alertname": alertname,
                "pipeline": pipeline,
                "match": dict(match or {}),
                "parameters": dict(parameters or {}),
                "cooldown_seconds": cooldown_seconds,
            }
        )
        response = self.request("POST", "/api/triggers/alert-routes", json=body)
        return AlertRoute.model_validate(response.json())

    def list_alert_routes(self) -> list[AlertRoute]:
        return _items(self.get_json("/api/triggers/alert-routes"), AlertRoute)

    def delete_alert_route(self, route_id: str) -> None:
        self.request("DELETE", f"/api/triggers/alert-routes/{_q(route_id)}")

    def notify_alerts(self, payload: Mapping[str, Any], *, token: str | None = None) -> dict[str, Any]:
        """Send an AlertManager webhook payload (version 4) as AlertManager would: answers which
        runs were `started` and which alerts were `skipped` and why. `token`: the orchestrator's
        alert webhook token, sent instead of the API key (needed when the orchestrator sets one)."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        response = self.request("POST", "/api/triggers/alertmanager", json=dict(payload), headers=headers)
        data: dict[str, Any] = response.json()
        return data

    # uploads and artifacts ------------------------------------------------------------------------
    def upload(self, source: str | Path | bytes, *, name: str | None = None) -> dict[str, Any]:
        """Upload a file (or bytes) for runs to read: `{"uri", "name", "size", "sha256"}`. Pass the
        `mlops-artifacts://` URI as a run parameter (the training template's `data_uri`); any
        worker reads it, whichever executor runs the task. `name` defaults to the file's name."""
        if isinstance(source, bytes):
            body: bytes | Iterator[bytes] = source
            size = len(source)
            filename = name or "upload.bin"
        else:
            path = Path(source)
            size = path.stat().st_size
            filename = name or path.name

            def chunks() -> Iterator[bytes]:
                with open(path, "rb") as fh:
                    while chunk := fh.read(UPLOAD_CHUNK):
                        yield chunk

            body = chunks()
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = self.request(
            "POST", "/api/uploads", params={"name": filename}, content=body, headers=headers, idempotent=False
        )
        data: dict[str, Any] = response.json()
        return data

    def download_artifact(self, uri: str, dest: str | Path) -> Path:
        """Stream an artifact of the orchestrator's store (an upload or a task's output) to `dest`
        (a file, or a directory to put it in under its own name)."""
        target = Path(dest)
        if target.is_dir():
            target = target / uri.rstrip("/").rsplit("/", 1)[-1]
        partial = target.with_name(target.name + ".part")
        with self.stream("GET", "/api/artifacts", params={"uri": uri}) as response, open(partial, "wb") as fh:
            for chunk in response.iter_bytes(UPLOAD_CHUNK):
                fh.write(chunk)
        partial.replace(target)
        return target

    # retraining policies -------------------------------------------------------------------------
    def set_retraining_policy(self, model: str, policy: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create or replace the model's retraining policy (`PUT /api/retraining-policies/{model}`):
        `pipeline`, `parameters`, `cooldown_seconds`, `evaluation_interval_seconds`, `enabled`,
        `alerts`, and the triggers `performance`, `drift`, `schedule`, `new_data`."""
        path = f"/api/retraining-policies/{_q(model)}"
        data: dict[str, Any] = self.request("PUT", path, json=dict(policy or {})).json()
        return data

    def setup_retraining(self, model: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The orchestration document's `RetrainingTriggerConfig` (`performance_threshold`,
        `performance_metric`, `evaluation_window`, `data_drift_threshold`,
        `drift_monitoring_features`, `retraining_schedule`, `new_data_threshold`) as the policy."""
        path = f"/api/v1/retraining/setup/{_q(model)}"
        data: dict[str, Any] = self.request("POST", path, json=dict(config)).json()
        return data

    def get_retraining_policy(self, model: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get_json(f"/api/retraining-policies/{_q(model)}")
        return data

    def list_retraining_policies(self, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = self.get_json("/api/retraining-policies", limit=limit, offset=offset)
        return data

    def delete_retraining_policy(self, model: str) -> None:
        self.request("DELETE", f"/api/retraining-policies/{_q(model)}")

    def evaluate_retraining(self, model: str) -> dict[str, Any]:
        """Evaluate the policy now: each signal's evidence, and the gate's decision for those that fired."""
        path = f"/api/retraining-policies/{_q(model)}/evaluate"
        data: dict[str, Any] = self.request("POST", path).json()
        return data

    def retraining_triggers(
        self, model: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """Trigger decisions, newest first: kind, evidence, decision, run and what it registered."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if model is not None:
            params["model"] = model
        data: dict[str, Any] = self.get_json("/api/retraining-triggers", **params)
        return data
