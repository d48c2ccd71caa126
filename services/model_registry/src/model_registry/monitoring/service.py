"""Monitoring use cases: store a reference profile, log predictions and labels, drift and
performance over a window of the log (the statistics are the framework-free core's)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.errors import Unprocessable
from sqlalchemy.orm import Session

from model_registry.errors import (
    ColumnTypeMismatch,
    InvalidMonitoringQuery,
    ReferenceNotFound,
    UnknownVersion,
)
from model_registry.monitoring import repository as repo
from model_registry.monitoring.columns import ColumnTypeError
from model_registry.monitoring.performance import compare_with_registered, compute_performance
from model_registry.monitoring.performance_types import PerformanceInputError
from model_registry.monitoring.profile import Profile
from model_registry.monitoring.report import DriftConfigError, drift
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
from model_registry.tables import ModelVersion, MonitoringReference, RegisteredModel

MAX_WINDOW = 100_000  # predictions one drift or performance answer reads at most
_DURATION = re.compile(r"^(\d{1,9})([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def utc(moment: datetime) -> datetime:
    """Aware UTC (naive values, as SQLite gives them back, are UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


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


def log_predictions(
    session: Session, model: RegisteredModel, rows: list[PredictionIn]
) -> PredictionsAccepted:
    """Idempotent on (model, request_id): a request_id already logged, or repeated in the batch,
    counts as a duplicate and keeps its first row. The caller holds the model's lock."""
    unknown = sorted(
        {r.version for r in rows} - repo.known_versions(session, model.id, (r.version for r in rows))
    )
    if unknown:
        first = next(i for i, r in enumerate(rows) if r.version == unknown[0])
        raise UnknownVersion(
            f"row {first}: model {model.name!r} has no version {unknown[0]!r}",
            {"row": first, "versions": unknown[:100]},
        )
    seen = set(repo.logged_ids(session, model.id, [r.request_id for r in rows]))
    now = utcnow()
    fresh: list[dict[str, Any]] = []
    for r in rows:
        if r.request_id in seen:
            continue
        seen.add(r.request_id)
        fresh.append(
            {
                "model_id": model.id,
                "request_id": r.request_id,
                "version": r.version,
                "timestamp": utc(r.timestamp) if r.timestamp else now,
                "features": r.features,
                "prediction": r.prediction,
                "probability": r.probability,
                "label": None,
                "labelled_at": None,
                "logged_at": now,
            }
        )
    repo.add_predictions(session, fresh)
    return PredictionsAccepted(accepted=len(fresh), duplicates=len(rows) - len(fresh))


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
    return rows, WindowRead(
        start=bounds[0], end=bounds[1], last_n=last_n, count=len(rows), truncated=truncated
    )


def _current(profile: Profile, rows: list[Any]) -> dict[str, list[Any]]:
    """Window columns for the profile's columns (features, prediction, probability); other feature
    names are passed empty so the report lists them as unknown."""
    n = len(rows)
    features: dict[str, list[Any]] = {name: [None] * n for name in profile.columns}
    seen: set[str] = set()
    for i, r in enumerate(rows):  # one pass over every logged value
        for key, value in r.features.items():
            column = features.get(key)
            if column is not None:
                column[i] = value
            seen.add(key)
    columns: dict[str, list[Any]] = {}
    for name in profile.columns:
        if name == "prediction" and name not in seen:
            columns[name] = [r.prediction for r in rows]
        elif name == "probability" and name not in seen:
            columns[name] = [r.probability if not isinstance(r.probability, list) else None for r in rows]
        elif name != "label" or name in seen:
            columns[name] = features[name]
    for name in seen - set(profile.columns):
        columns[name] = []
    return columns


def drift_report(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
) -> DriftRead:
    profile = Profile.from_json(load_reference(session, model, version).profile)
    rows, window = _rows(session, model, version, bounds, last_n, labelled=False)
    try:
        report = drift(profile, _current(profile, rows))
    except ColumnTypeError as exc:
        request_id = rows[exc.row].request_id if exc.row < len(rows) else None
        raise ColumnTypeMismatch(
            f"logged prediction {request_id!r}: column {exc.column!r} is not {exc.kind} as in the reference",
            {"column": exc.column, "request_id": request_id, "expected": exc.kind},
        ) from None
    except DriftConfigError as exc:
        raise Unprocessable(str(exc), {"problems": exc.problems}, code="INVALID_DRIFT_CONFIG") from None
    return DriftRead(name=model.name, version=version.version, window=window, **report)


def _probabilities(rows: list[Any]) -> list[Any] | None:
    values = [r.probability for r in rows]
    return values if values and all(v is not None for v in values) else None


def performance_report(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    bounds: tuple[datetime | None, datetime | None],
    last_n: int | None,
) -> PerformanceRead:
    rows, window = _rows(session, model, version, bounds, last_n, labelled=True)
    try:
        report = compute_performance(
            [r.prediction for r in rows], [r.label for r in rows], _probabilities(rows)
        )
    except PerformanceInputError as exc:
        raise Unprocessable(str(exc), code="INVALID_PERFORMANCE_INPUT") from None
    return PerformanceRead(
        name=model.name,
        version=version.version,
        window=window,
        performance=report.to_dict(),
        registered=compare_with_registered(report, version.metrics or {}),
    )
