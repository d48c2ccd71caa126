"""Monitoring use cases: store a reference profile, log predictions and labels, drift and
performance over a window of the log (the statistics are the framework-free core's)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from mlops_kit.audit import utcnow
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from model_registry.errors import (
    ColumnTypeMismatch,
    InvalidDriftConfig,
    InvalidMonitoringQuery,
    InvalidPerformanceInput,
    ReferenceNotFound,
    UnknownVersion,
    VariantFilterUnavailable,
)
from model_registry.monitoring import buckets, logstore
from model_registry.monitoring import repository as repo
from model_registry.monitoring.columns import ColumnTypeError
from model_registry.monitoring.html_report import ReportInput, render
from model_registry.monitoring.logparse import LoggedBatch
from model_registry.monitoring.logstore import Column
from model_registry.monitoring.performance import compare_with_registered, compute_performance
from model_registry.monitoring.performance_types import PerformanceInputError
from model_registry.monitoring.profile import Profile
from model_registry.monitoring.report import DriftConfig, DriftConfigError, drift
from model_registry.monitoring.schemas import (
    ColumnSummary,
    DriftRead,
    LabelIn,
    LabelsAccepted,
    PerformanceRead,
    PredictionIn,
    PredictionsAccepted,
    ReferenceRead,
    ReferenceSummary,
    WindowRead,
)
from model_registry.monitoring.timeline import main_metric, performance_over_time
from model_registry.monitoring.times import utc
from model_registry.tables import ModelVersion, MonitoringReference, RegisteredModel

MAX_WINDOW = 100_000  # predictions one drift or performance answer reads at most
MAX_RAW_LABELLED = 1_000_000  # raw labelled rows a window over pruned hours samples from
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


# ---- reference --------------------------------------------------------------------------------


def summary(model: RegisteredModel, version: ModelVersion, row: MonitoringReference) -> ReferenceSummary:
    profile = Profile.from_json(row.profile)
    columns = [
        ColumnSummary(name=c.name, kind=c.kind, count=c.count, missing=c.missing, sampled=c.sampled)
        for c in profile.columns.values()
    ]
    return ReferenceSummary(
        name=model.name,
        version=version.version,
        rows=row.rows,
        sampled=any(c.sampled for c in columns),
        columns=columns,
        created_at=utc(row.created_at),
        created_by=row.created_by,
    )


def put_reference(
    session: Session, model: RegisteredModel, version: ModelVersion, profile: Profile, rows: int, actor: str
) -> ReferenceSummary:
    row = MonitoringReference(
        version_id=version.id, profile=profile.to_json(), rows=rows, created_at=utcnow(), created_by=actor
    )
    return summary(model, version, repo.put_reference(session, row))


def load_reference(session: Session, model: RegisteredModel, version: ModelVersion) -> MonitoringReference:
    row = repo.get_reference(session, version.id)
    if row is None:
        raise ReferenceNotFound(
            f"version {version.version!r} of {model.name!r} has no reference profile; "
            "PUT one at .../monitoring/reference",
            {"name": model.name, "version": version.version},
        )
    return row


def read_reference(session: Session, model: RegisteredModel, version: ModelVersion) -> ReferenceRead:
    row = load_reference(session, model, version)
    head = summary(model, version, row)
    return ReferenceRead(**head.model_dump(), profile=Profile.from_json(row.profile).to_dict())


# ---- predictions and labels -------------------------------------------------------------------


def _check_versions(session: Session, model: RegisteredModel, versions: list[str]) -> None:
    unknown = sorted(set(versions) - repo.known_versions(session, model.id, versions))
    if unknown:
        first = versions.index(unknown[0])
        raise UnknownVersion(
            f"row {first}: model {model.name!r} has no version {unknown[0]!r}",
            {"row": first, "versions": unknown[:100]},
        )


def log_batch(
    session: Session, model: RegisteredModel, batch: LoggedBatch, now: datetime | None = None
) -> PredictionsAccepted:
    """Idempotent on (model, request_id): a request_id already logged, or repeated in the batch,
    counts as a duplicate and keeps its first row. The caller holds the model's lock."""
    _check_versions(session, model, batch.versions)
    ids = batch.request_ids
    if len(set(ids)) == len(ids):
        first = list(range(len(ids)))
    else:  # a request id repeated in the batch keeps its first row
        seen: set[str] = set()
        first = [i for i, rid in enumerate(ids) if not (rid in seen or seen.add(rid))]  # type: ignore[func-returns-value]
    fresh = logstore.store(session, model.id, batch, first, now or utcnow())
    return PredictionsAccepted(accepted=len(fresh), duplicates=len(batch) - len(fresh))


def log_predictions(
    session: Session, model: RegisteredModel, rows: list[PredictionIn]
) -> PredictionsAccepted:
    """`log_batch` of validated rows (the route parses its body column by column instead)."""
    now = utcnow()
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r.features))
    batch = LoggedBatch(
        [r.request_id for r in rows],
        [r.version for r in rows],
        np.array([logstore.micros(r.timestamp or now) for r in rows], dtype=np.int64),
        {name: [r.features.get(name) for r in rows] for name in names},
        [r.prediction for r in rows],
        [r.probability for r in rows],
    )
    return log_batch(session, model, batch, now)


def log_labels(session: Session, model: RegisteredModel, rows: list[LabelIn]) -> LabelsAccepted:
    """Join labels to their predictions by request_id (a later label replaces an earlier one)."""
    ids = repo.logged_ids(session, model.id, [r.request_id for r in rows])
    now = utcnow()
    latest = {r.request_id: r.label for r in rows if r.request_id in ids}
    repo.set_labels(
        session, [{"id": ids[rid], "label": label, "labelled_at": now} for rid, label in latest.items()]
    )
    unknown = list(dict.fromkeys(r.request_id for r in rows if r.request_id not in ids))
    return LabelsAccepted(labelled=len(latest), unknown=len(unknown), unknown_request_ids=unknown[:100])


# ---- windows ----------------------------------------------------------------------------------


def parse_last(last: str) -> timedelta:
    match = _DURATION.match(last)
    if not match:
        raise InvalidMonitoringQuery(f"last={last!r} is not a duration such as 30m, 1h, 7d", {"last": last})
    return timedelta(seconds=int(match[1]) * _UNIT[match[2]])


def window_bounds(
    start: datetime | None, end: datetime | None, last: str | None
) -> tuple[datetime | None, datetime | None]:
    start, end = (utc(start) if start else None), (utc(end) if end else None)
    if last is not None:
        if start is not None:
            raise InvalidMonitoringQuery("give start or last, not both")
        end = end or utcnow()
        try:
            start = end - parse_last(last)
        except OverflowError:
            raise InvalidMonitoringQuery(f"last={last!r} reaches before year 1", {"last": last}) from None
    if start is not None and end is not None and start >= end:
        raise InvalidMonitoringQuery("start must be before end", {"start": str(start), "end": str(end)})
    return start, end


def pick_version(session: Session, model: RegisteredModel, version: str | None) -> str:
    """The version asked for, else the one of the most recent logged prediction, else 'latest'."""
    return version or repo.latest_logged_version(session, model.id) or "latest"


def _window_read(
    bounds: tuple[datetime | None, datetime | None], last_n: int | None, count: int, truncated: bool
) -> WindowRead:
    return WindowRead(start=bounds[0], end=bounds[1], last_n=last_n, count=count, truncated=truncated)


def _rows(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
    labelled: bool,
) -> tuple[list[Any], WindowRead]:
    limit = min(last_n or MAX_WINDOW, MAX_WINDOW)
    rows = repo.window(session, model.id, version.version, *bounds, limit + 1, labelled)
    truncated = len(rows) > limit and (last_n is None or last_n > MAX_WINDOW)
    rows = rows[:limit][::-1]  # oldest first
    return rows, _window_read(bounds, last_n, len(rows), truncated)


class CurrentWindow:
    """What a drift answer (or the HTML report) compares: the version's reference profile and the
    window's values per profile column (oldest first; numeric logged columns as float64 arrays
    with NaN for missing, others as arrays or lists of the logged values), with their
    timestamps (made on first use) and request ids."""

    def __init__(
        self,
        profile: Profile,
        columns: dict[str, Column],
        timestamps: list[datetime] | NDArray[np.int64],
        window: WindowRead,
        request_ids: list[str],
    ) -> None:
        self.profile, self.columns, self.window, self.request_ids = profile, columns, window, request_ids
        self._timestamps = timestamps

    @property
    def timestamps(self) -> list[datetime]:
        if isinstance(self._timestamps, np.ndarray):
            self._timestamps = logstore.datetimes(self._timestamps)
        return self._timestamps


_PROFILES: OrderedDict[tuple[int, datetime, int], Profile] = OrderedDict()
_PROFILES_LOCK = threading.Lock()
PROFILES_CACHED = 4


def _profile(session: Session, model: RegisteredModel, version: ModelVersion) -> Profile:
    """The version's profile, parsed once per stored profile (a few MB of JSON) in this process."""
    stamp = repo.reference_stamp(session, version.id)
    key = None if stamp is None else (version.id, *stamp)
    with _PROFILES_LOCK:
        cached = _PROFILES.get(key) if key else None
    if cached is not None:
        return cached
    profile = Profile.from_json(load_reference(session, model, version).profile)
    if key is not None:
        with _PROFILES_LOCK:
            _PROFILES[key] = profile
            while len(_PROFILES) > PROFILES_CACHED:
                _PROFILES.popitem(last=False)
    return profile


def current_window(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
    variant: str | None = None,
) -> CurrentWindow:
    profile = _profile(session, model, version)
    limit = min(last_n or MAX_WINDOW, MAX_WINDOW)
    wanted = {*profile.columns, logstore.PREDICTION, logstore.PROBABILITY}
    pruned = repo.any_pruned(session, model.id, version.version, *_hours(bounds), labels=False)
    if pruned and variant is not None:
        raise VariantFilterUnavailable(
            "the variant filter reads the raw prediction log; this window reaches hours already "
            "rolled up into aggregates (older than the log's retention): narrow it",
            {"variant": variant},
        )
    if pruned:
        sampled = buckets.sampled_window(session, model.id, version.version, bounds, limit, wanted)
        window = _window_read(bounds, last_n, len(sampled.rows), False).model_copy(
            update={"source": "aggregates", "sampled": True, "rows": sampled.total}
        )
        rows, names = sampled.rows, sampled.names
    else:
        raw = logstore.read_window(session, model.id, version.version, bounds, limit, wanted, variant)
        truncated = raw.truncated and (last_n is None or last_n > MAX_WINDOW)
        window = _window_read(bounds, last_n, len(raw.rows), truncated)
        rows, names = raw.rows, raw.names
    columns = logstore.profile_columns(profile.columns, rows, names)
    return CurrentWindow(profile, columns, rows.timestamps, window, rows.request_ids)


def _hours(bounds: tuple[datetime | None, datetime | None]) -> tuple[datetime | None, datetime | None]:
    """The bucket starts an hourly aggregate of [start, end) may have."""
    start = bounds[0].replace(minute=0, second=0, microsecond=0) if bounds[0] else None
    return start, bounds[1]


def drift_of(current: CurrentWindow, config: DriftConfig | None = None) -> dict[str, Any]:
    """The core's drift report of a window (errors as the platform's 422s)."""
    try:
        return drift(current.profile, current.columns, config)
    except ColumnTypeError as exc:
        ids = current.request_ids
        request_id = ids[exc.row] if exc.row < len(ids) else None
        raise ColumnTypeMismatch(
            f"logged prediction {request_id!r}: column {exc.column!r} is not {exc.kind} as in the reference",
            {"column": exc.column, "request_id": request_id, "expected": exc.kind},
        ) from None
    except DriftConfigError as exc:
        raise InvalidDriftConfig(str(exc), {"problems": exc.problems}) from None


def drift_report(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
    config: DriftConfig | None = None,
    variant: str | None = None,
) -> DriftRead:
    current = current_window(session, model, version, bounds, last_n, variant)
    report = drift_of(current, config)
    window = current.window if variant is None else current.window.model_copy(update={"variant": variant})
    return DriftRead(name=model.name, version=version.version, window=window, **report)


@dataclass
class LabelledWindow:
    """The labelled predictions of a window, oldest first (performance, and its course over time)."""

    timestamps: list[datetime]
    predictions: list[Any]
    probabilities: list[Any] | None  # None unless every row has one
    labels: list[Any]
    window: WindowRead


def labelled_window(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
) -> LabelledWindow:
    if not repo.any_pruned(session, model.id, version.version, *_hours(bounds), labels=True):
        rows, window = _rows(session, model, version, bounds, last_n, labelled=True)
        return _labelled(
            [utc(r.timestamp) for r in rows],
            [r.prediction for r in rows],
            [r.probability for r in rows],
            [r.label for r in rows],
            window,
        )
    limit = min(last_n or MAX_WINDOW, MAX_WINDOW)
    raw = repo.window(session, model.id, version.version, *bounds, MAX_RAW_LABELLED, labelled=True)
    sampled = buckets.sampled_labelled(session, model.id, version.version, bounds, limit, raw)
    window = _window_read(bounds, last_n, len(sampled.rows), False).model_copy(
        update={"source": "aggregates", "sampled": True, "rows": sampled.total}
    )
    columns = sampled.rows.columns
    return _labelled(
        logstore.datetimes(sampled.rows.timestamps),
        list(columns.get(logstore.PREDICTION, [])),
        list(columns.get(logstore.PROBABILITY, [])),
        list(columns.get(buckets.LABEL, [])),
        window,
    )


def _labelled(
    timestamps: list[datetime],
    predictions: list[Any],
    probabilities: list[Any],
    labels: list[Any],
    window: WindowRead,
) -> LabelledWindow:
    every = bool(probabilities) and all(v is not None for v in probabilities)
    return LabelledWindow(timestamps, predictions, probabilities if every else None, labels, window)


def performance_report(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
) -> PerformanceRead:
    labelled = labelled_window(session, model, version, bounds, last_n)
    try:
        report = compute_performance(labelled.predictions, labelled.labels, labelled.probabilities)
    except PerformanceInputError as exc:
        raise InvalidPerformanceInput(str(exc)) from None
    return PerformanceRead(
        name=model.name,
        version=version.version,
        window=labelled.window,
        performance=report.to_dict(),
        registered=compare_with_registered(report, version.metrics or {}),
    )


def report_page(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
    config: DriftConfig | None = None,
) -> str:
    """The HTML report of a window: the drift answer's verdicts with both distributions of every
    column, and the labelled predictions' performance over time and overall."""
    current = current_window(session, model, version, bounds, last_n)
    report = drift_of(current, config)
    labelled = labelled_window(session, model, version, bounds, last_n)
    values = (labelled.predictions, labelled.labels, labelled.probabilities)
    try:
        performance = compute_performance(*values)
        metric = main_metric(performance, version.metrics or {})
        timeline = performance_over_time(labelled.timestamps, *values, performance, metric)
    except PerformanceInputError as exc:
        raise InvalidPerformanceInput(str(exc)) from None
    page = ReportInput(
        name=model.name,
        version=version.version,
        window=current.window.model_dump(),
        profile=current.profile,
        columns=current.columns,
        timestamps=current.timestamps,
        drift=report,
        performance=performance,
        registered=compare_with_registered(performance, version.metrics or {}),
        metric=metric,
        timeline=timeline,
        generated_at=utcnow(),
    )
    return render(page)
