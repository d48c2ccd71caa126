"""Client for model monitoring on the model registry (:8000): prediction and label logs (batched in
the background), reference profiles, drift, performance, and the monitoring config, alerts and report."""

from __future__ import annotations

import itertools
import json
import math
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from mlops_client._base import ServiceClient, _clean
from mlops_client.config import service_url
from mlops_client.monitoring_data import CSV, PARQUET, Progress, reference_body
from mlops_client.monitoring_logger import MAX_BATCH, Batching, PredictionLogger, Row
from mlops_client.monitoring_models import (
    DriftReport,
    LabelsAccepted,
    LoggerStats,
    PerformanceReport,
    PredictionsAccepted,
    ReferenceProfile,
    ReferenceSummary,
)
from mlops_client.registry import _q

JSON_HEADERS = {"Content-Type": "application/json"}
_UNITS = (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60))


class MonitoringClient(ServiceClient):
    """Log predictions and labels, store a version's reference profile, ask for drift and performance.

    >>> with MonitoringClient() as monitoring:       # MLOPS_MODEL_REGISTRY_URL, MLOPS_API_KEY
    ...     monitoring.set_reference("churn", "3", training_frame)
    ...     rid = monitoring.log_prediction("churn", {"age": 41}, 1, version="3", probability=0.8)
    ...     monitoring.log_labels("churn", {rid: 0})          # later, when the truth is known
    ...     monitoring.drift("churn", last="1h").drifted

    `log_prediction(s)` only queue rows: a background thread sends them in batches (see
    `Batching`), retrying through outages; `flush()` waits for delivery and `close()` (also on
    leaving a `with` block and at interpreter exit) delivers what is left. A client inherited by
    a forked worker starts with an empty queue, its own sender thread and its own connections.
    """

    def __init__(self, base_url: str | None = None, *, batching: Batching | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("model_registry"), **kwargs)
        self._transport: httpx.BaseTransport | None = kwargs.get("transport")
        self._logger = PredictionLogger(self._post_predictions, batching)
        _clients.add(self)
        # request ids: a random prefix per client and a counter (uuid4 per row costs ~6 µs here)
        self._id_prefix, self._ids = uuid.uuid4().hex, itertools.count()

    def _new_connections(self) -> None:
        """In a forked child: the parent's pooled sockets are the parent's; open new ones."""
        old = self._http
        self._http = httpx.Client(
            base_url=old.base_url, headers=old.headers, timeout=old.timeout, transport=self._transport
        )

    def _new_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids):x}"

    def close(self, timeout: float | None = None) -> None:
        """Deliver queued predictions (up to `timeout`, default `Batching.close_timeout`), then close."""
        self._logger.close(timeout)
        super().close()

    # predictions and labels --------------------------------------------------------------------
    def log_prediction(
        self,
        model: str,
        features: Mapping[str, Any],
        prediction: Any = None,
        *,
        version: str,
        probability: float | Sequence[float] | None = None,
        request_id: str | None = None,
        timestamp: datetime | str | None = None,
        variant: str | None = None,
    ) -> str:
        """Queue one prediction for background delivery; returns its request_id (a new one when
        none is given) to log its label with later. The timestamp defaults to now (this call);
        `variant` names the A/B variant (or shadow) that served it."""
        rid = request_id or self._new_id()
        row = {
            "request_id": rid,
            "version": version,
            "timestamp": timestamp or time.time(),
            "features": dict(features),
            "prediction": prediction,
            "probability": probability,
            "variant": variant,
        }
        self._logger.put_one(model, row)
        return rid

    def log_predictions(
        self, model: str, rows: Iterable[Mapping[str, Any]], *, version: str | None = None
    ) -> list[str]:
        """Queue rows `{features, prediction?, probability?, request_id?, timestamp?, version?}`
        for background delivery (`version` for rows without theirs); returns their request_ids."""
        prepared = _prepare(rows, version, time.time(), self._new_id)
        self._logger.put(model, prepared)
        return [row["request_id"] for row in prepared]

    def log_predictions_sync(
        self, model: str, rows: Iterable[Mapping[str, Any]], *, version: str | None = None
    ) -> PredictionsAccepted:
        """Send rows now (10,000 per request, retried on 5xx: logging is idempotent on request_id)."""
        prepared = _prepare(rows, version, time.time(), self._new_id)
        total = PredictionsAccepted(accepted=0, duplicates=0)
        for batch in _batches(prepared):
            done = self._post_predictions(model, batch)
            total = PredictionsAccepted(
                accepted=total.accepted + done.accepted, duplicates=total.duplicates + done.duplicates
            )
        return total

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every prediction queued so far is delivered (or refused); False on timeout."""
        return self._logger.flush(timeout)

    def stats(self) -> LoggerStats:
        """The background logger's counters: queued, accepted, duplicates, dropped, rejected, ..."""
        return self._logger.stats()

    def _post_predictions(self, model: str, rows: list[Row]) -> PredictionsAccepted:
        body = json.dumps([_wire(row) for row in rows], default=_plain, allow_nan=False)
        url = f"/api/models/{_q(model)}/predictions"
        response = self.request("POST", url, content=body, headers=JSON_HEADERS, idempotent=True)
        return PredictionsAccepted.model_validate(response.json())

    def log_labels(
        self, model: str, labels: Mapping[str, Any] | Iterable[Mapping[str, Any]]
    ) -> LabelsAccepted:
        """Join labels to logged predictions: `{request_id: label}` or rows `{request_id, label}`
        (10,000 per request; a later label replaces an earlier one)."""
        rows = (
            [{"request_id": k, "label": v} for k, v in labels.items()]
            if isinstance(labels, Mapping)
            else [{"request_id": r["request_id"], "label": r["label"]} for r in labels]
        )
        labelled, unknown, ids = 0, 0, []
        for batch in _batches(rows):
            body = json.dumps(batch, default=_plain)
            url = f"/api/models/{_q(model)}/labels"
            done = LabelsAccepted.model_validate(
                self.request("POST", url, content=body, headers=JSON_HEADERS, idempotent=True).json()
            )
            labelled, unknown = labelled + done.labelled, unknown + done.unknown
            ids.extend(done.unknown_request_ids)
        return LabelsAccepted(labelled=labelled, unknown=unknown, unknown_request_ids=ids[:100])

    # reference profile ---------------------------------------------------------------------------
    def set_reference(
        self,
        model: str,
        version: str,
        data: Any,
        *,
        types: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ReferenceSummary:
        """Build and store the version's reference profile from a pandas DataFrame, a pyarrow
        Table, a list of records, or a .csv / .json / .jsonl / .parquet file (streamed).

        `types` declares column kinds (numeric, categorical, boolean); text columns of a frame
        are declared categorical. `progress(bytes_sent, total)` follows the upload."""
        body = reference_body(data, types)
        params: dict[str, Any] = {"types": [f"{k}:{v}" for k, v in body.query_types.items()]}
        content_type = body.content_type
        if content_type in (CSV, PARQUET):
            # as a streamed upload (the upload limit, not the JSON body limit), its format named
            params["format"] = "csv" if content_type == CSV else "parquet"
            content_type = "application/octet-stream"
        headers = {"Content-Type": content_type, "Content-Length": str(body.size)}
        url = f"/api/models/{_q(model)}/versions/{_q(version)}/monitoring/reference"
        # a streamed body can't be replayed, so the upload is not retried blindly
        response = self.request(
            "PUT", url, content=body.chunks(progress), headers=headers, params=params, idempotent=False
        )
        return ReferenceSummary.model_validate(response.json())

    def get_reference(self, model: str, version: str) -> ReferenceProfile:
        """The stored profile (`NotFoundError` REFERENCE_NOT_FOUND when there is none)."""
        url = f"/api/models/{_q(model)}/versions/{_q(version)}/monitoring/reference"
        return ReferenceProfile.model_validate(self.get_json(url))

    # drift, performance, report ------------------------------------------------------------------
    def drift(
        self,
        model: str,
        *,
        version: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        last: timedelta | str | None = None,
        last_n: int | None = None,
        variant: str | None = None,
    ) -> DriftReport:
        """Drift of a window of logged predictions against the version's reference profile.

        `start` (inclusive) / `end` (exclusive), or `last` ("30m", "1h", "7d", "2w" or a timedelta)
        before `end` or now, and/or the `last_n` most recent; `version` defaults to the version
        of the latest logged prediction; `variant`: only the predictions model serving logged
        for that A/B variant (or "shadow")."""
        params = _window(version, start, end, last, last_n)
        if variant is not None:
            params["variant"] = variant
        url = f"/api/models/{_q(model)}/monitoring/drift"
        return DriftReport.model_validate(self.get_json(url, **params))

    def performance(
        self,
        model: str,
        *,
        version: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        last: timedelta | str | None = None,
        last_n: int | None = None,
    ) -> PerformanceReport:
        """Live metrics (with intervals) of the window's labelled predictions, beside the registered ones."""
        params = _window(version, start, end, last, last_n)
        url = f"/api/models/{_q(model)}/monitoring/performance"
        return PerformanceReport.model_validate(self.get_json(url, **params))

    def report(
        self,
        model: str,
        path: str | Path | None = None,
        *,
        version: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        last: timedelta | str | None = None,
        last_n: int | None = None,
    ) -> str:
        """The HTML monitoring report of a window (self-contained); also written to `path` if given."""
        params = _window(version, start, end, last, last_n)
        html = self.request("GET", f"/api/models/{_q(model)}/monitoring/report", params=_clean(params)).text
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    # monitoring config and alerts (their shapes are the server's; returned as JSON) --------------
    def set_config(self, model: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the model's monitoring config (drift methods and thresholds, alert rules, ...)."""
        result: dict[str, Any] = self.request(
            "PUT", f"/api/models/{_q(model)}/monitoring", json=dict(config)
        ).json()
        return result

    def get_config(self, model: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get_json(f"/api/models/{_q(model)}/monitoring")
        return result

    def delete_config(self, model: str) -> None:
        """Stop monitoring the model (its alert history is kept)."""
        self.request("DELETE", f"/api/models/{_q(model)}/monitoring")

    def alerts(self, model: str, **params: Any) -> dict[str, Any]:
        """Each rule's state and the history of state changes, newest first (`rule=`, `limit=`,
        `offset=` passed on)."""
        result: dict[str, Any] = self.get_json(f"/api/models/{_q(model)}/monitoring/alerts", **params)
        return result

    def evaluate(self, model: str) -> dict[str, Any]:
        """Evaluate the model's rules now instead of at the next interval (what the background
        evaluator does): the metrics, the state changes and every rule's state."""
        result: dict[str, Any] = self.request("POST", f"/api/models/{_q(model)}/monitoring/evaluate").json()
        return result


# ---- helpers ---------------------------------------------------------------------------------------

_clients: weakref.WeakSet[MonitoringClient] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._new_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _prepare(
    rows: Iterable[Mapping[str, Any]], version: str | None, now: float, new_id: Callable[[], str]
) -> list[Row]:
    prepared = []
    for i, source in enumerate(rows):
        row = dict(source)
        if not row.get("request_id"):
            row["request_id"] = new_id()
        if version is not None:
            row.setdefault("version", version)
        if "version" not in row or "features" not in row:
            raise ValueError(f"prediction row {i} needs 'features' and a 'version' (or pass version=)")
        if row.get("timestamp") is None:
            row["timestamp"] = now
        prepared.append(row)
    return prepared


def _batches(rows: list[Any]) -> Iterator[list[Any]]:
    it = iter(rows)
    while batch := list(islice(it, MAX_BATCH)):
        yield batch


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays (a probability per class)
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not a number, string, boolean or null")


def _finite(value: Any) -> Any:
    """NaN and ±inf are missing values (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        return _finite(value.item())
    return value


def _wire(row: Row) -> Row:
    """A queued row as the server takes it (done on the sender thread, not the caller's)."""
    out = dict(row)
    stamp = out.get("timestamp")
    if isinstance(stamp, float):
        out["timestamp"] = datetime.fromtimestamp(stamp, UTC).isoformat()
    elif isinstance(stamp, datetime):
        out["timestamp"] = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).isoformat()
    out["features"] = {str(k): _finite(v) for k, v in out["features"].items()}
    out["prediction"] = _finite(out.get("prediction"))
    if out.get("probability") is None:
        out.pop("probability", None)
    if out.get("variant") is None:
        out.pop("variant", None)
    return out


def _window(
    version: str | None,
    start: datetime | str | None,
    end: datetime | str | None,
    last: timedelta | str | None,
    last_n: int | None,
) -> dict[str, Any]:
    def when(value: datetime | str | None) -> str | None:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        return value

    return {
        "version": version,
        "start": when(start),
        "end": when(end),
        "last": _duration(last) if isinstance(last, timedelta) else last,
        "last_n": last_n,
    }


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds <= 0 or seconds != span.total_seconds() or seconds % 60:
        raise ValueError(f"last={span!r}: a window is a positive whole number of minutes")
    unit, size = next((u, s) for u, s in _UNITS if seconds % s == 0)
    return f"{seconds // size}{unit}"
