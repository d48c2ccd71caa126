"""Every SQL statement about reference profiles, the prediction log and its hourly buckets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Row, Table, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from model_registry.monitoring.times import micros
from model_registry.tables import (
    LogSegment,
    ModelVersion,
    MonitoringBucket,
    MonitoringReference,
    PredictionRecord,
)

IN_CHUNK = 500  # ids per IN (...) list
SEGMENT_PAGE = 8  # segments per query of a window read
_PREDICTIONS: Table = PredictionRecord.__table__  # type: ignore[assignment]
_SEGMENTS: Table = LogSegment.__table__  # type: ignore[assignment]
_LOG_COLUMNS = ("model_id", "request_id", "version", "timestamp", "prediction", "probability", "logged_at")


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def get_reference(session: Session, version_id: int) -> MonitoringReference | None:
    return session.get(MonitoringReference, version_id)


def reference_stamp(session: Session, version_id: int) -> tuple[datetime, int] | None:
    """What identifies the stored profile (it is replaced whole), without loading it."""
    row = session.execute(
        select(MonitoringReference.created_at, MonitoringReference.rows).where(
            MonitoringReference.version_id == version_id
        )
    ).first()
    return None if row is None else (row[0], row[1])


def put_reference(session: Session, row: MonitoringReference) -> MonitoringReference:
    merged = session.merge(row)
    session.flush()
    return merged


def known_versions(session: Session, model_id: int, versions: Iterable[str]) -> set[str]:
    wanted = list(set(versions))
    found: set[str] = set()
    for i in range(0, len(wanted), IN_CHUNK):
        found.update(
            session.scalars(
                select(ModelVersion.version).where(
                    ModelVersion.model_id == model_id, ModelVersion.version.in_(wanted[i : i + IN_CHUNK])
                )
            )
        )
    return found


# ---- the per-row log --------------------------------------------------------------------------


def logged_ids(session: Session, model_id: int, request_ids: Sequence[str]) -> dict[str, int]:
    """request_id -> row id of the ones already logged, in one statement for the whole batch."""
    # a join, not `= ANY(array)`: while the table is young (no statistics yet) PostgreSQL may
    # scan it and compare each row with the whole array (seconds for 5,000 ids)
    ids = orjson.dumps(list(dict.fromkeys(request_ids))).decode()
    if _postgres(session):
        query = text(
            "SELECT p.request_id, p.id FROM json_array_elements_text(CAST(:ids AS json)) AS j(rid) "
            "JOIN monitoring_predictions p ON p.model_id = :model AND p.request_id = j.rid"
        )
    else:
        # CROSS JOIN fixes SQLite's join order (the ids outside): left to itself the planner walks
        # every row of the model and scans the id list for each, quadratic in the log's size
        query = text(
            "SELECT p.request_id, p.id FROM json_each(:ids) AS j "
            "CROSS JOIN monitoring_predictions p ON p.model_id = :model AND p.request_id = j.value"
        )
    return {rid: pk for rid, pk in session.execute(query, {"model": model_id, "ids": ids})}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _json_column(values: list[Any]) -> list[str | None]:
    """Each value as JSON text (numbers by repr, which is their JSON: they are finite)."""
    types = set(map(type, values))
    if types <= {int, float}:
        return list(map(repr, values))
    return list(map(_json, values))


def _sqlite_times(micros: NDArray[np.int64]) -> list[str]:
    # SQLAlchemy's SQLite DATETIME text (UTC, no offset), so SQL comparisons see one format
    text_times = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") for t in text_times.tolist()]


def _postgres_times(micros: NDArray[np.int64]) -> list[str]:
    text_times = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [t + "+00:00" for t in text_times.tolist()]


def add_log_rows(
    session: Session,
    model_id: int,
    request_ids: list[str],
    versions: list[str],
    micros: NDArray[np.int64],
    predictions: list[Any],
    probabilities: list[Any],
    logged_at: datetime,
) -> None:
    """The narrow per-row records of new rows (the caller holds the model's lock and checked
    them with `logged_ids`): COPY on PostgreSQL, one executemany on SQLite."""
    columns = (request_ids, versions, micros, predictions, probabilities)
    if not _postgres(session):
        _sqlite_insert(session, model_id, *columns, logged_at)
        return
    n = len(request_ids)
    text_columns: list[list[Any]] = [
        [str(model_id)] * n,
        request_ids,
        versions,
        _postgres_times(micros),
        _json_column(predictions),
        _json_column(probabilities),
        [logged_at.isoformat()] * n,
    ]
    lines = map("\t".join, zip(*map(_copy_text, text_columns), strict=True))
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY monitoring_predictions ({', '.join(_LOG_COLUMNS)}) FROM STDIN") as copy,
    ):
        copy.write("\n".join(lines) + "\n")


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(values: list[Any]) -> list[str]:
    """A column in COPY's text format: NULL as \\N, backslash and separators escaped."""
    joined = "".join(v for v in values if v is not None)
    if any(c in joined for c in "\\\t\n\r"):
        values = [None if v is None else v.translate(_COPY_ESCAPES) for v in values]
    if None in values:
        return ["\\N" if v is None else v for v in values]
    return values


def _sqlite_insert(
    session: Session,
    model_id: int,
    request_ids: list[str],
    versions: list[str],
    micros: NDArray[np.int64],
    predictions: list[Any],
    probabilities: list[Any],
    logged_at: datetime,
) -> None:
    n = len(request_ids)
    logged = _sqlite_times(np.array([_us(logged_at)]))[0]
    rows = zip(
        [model_id] * n,
        request_ids,
        versions,
        _sqlite_times(micros),
        _json_column(predictions),
        _json_column(probabilities),
        [logged] * n,
        strict=True,
    )
    driver = session.connection().connection.driver_connection
    assert driver is not None
    names, marks = ", ".join(_LOG_COLUMNS), ", ".join("?" * len(_LOG_COLUMNS))
    driver.executemany(f"INSERT INTO monitoring_predictions ({names}) VALUES ({marks})", rows)


def _us(moment: datetime) -> int:
    return int(np.datetime64(moment.replace(tzinfo=None), "us").astype(np.int64))


def add_segments(session: Session, segments: list[dict[str, Any]]) -> None:
    if segments:
        session.execute(insert(_SEGMENTS), segments)


def set_labels(session: Session, updates: list[dict[str, Any]]) -> None:
    """`[{"id", "label", "labelled_at"}]` by primary key."""
    if updates:
        session.execute(update(PredictionRecord), updates)


def latest_logged_version(session: Session, model_id: int) -> str | None:
    """The version of the most recent logged prediction (by its time)."""
    found = session.scalar(
        select(LogSegment.version)
        .where(LogSegment.model_id == model_id)
        .order_by(LogSegment.t_max.desc(), LogSegment.id.desc())
        .limit(1)
    )
    return found or session.scalar(
        select(PredictionRecord.version)
        .where(PredictionRecord.model_id == model_id)
        .order_by(PredictionRecord.timestamp.desc(), PredictionRecord.id.desc())
        .limit(1)
    )


def window(
    session: Session,
    model_id: int,
    version: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    labelled: bool = False,
) -> list[Row[Any]]:
    """The most recent `limit` predictions of the window [start, end), newest first."""
    query = select(
        PredictionRecord.id,
        PredictionRecord.request_id,
        PredictionRecord.timestamp,
        PredictionRecord.prediction,
        PredictionRecord.probability,
        PredictionRecord.label,
    ).where(PredictionRecord.model_id == model_id, PredictionRecord.version == version)
    if start is not None:
        query = query.where(PredictionRecord.timestamp >= start)
    if end is not None:
        query = query.where(PredictionRecord.timestamp < end)
    if labelled:
        query = query.where(PredictionRecord.labelled_at.is_not(None))
    query = query.order_by(PredictionRecord.timestamp.desc(), PredictionRecord.id.desc()).limit(limit)
    return list(session.execute(query))


# ---- segments ---------------------------------------------------------------------------------


def segments_newest_first(
    session: Session,
    model_id: int,
    version: str,
    start: datetime | None,
    end: datetime | None,
    unrolled: bool = False,
) -> Iterator[Row[Any]]:
    """(id, rows, t_min, t_max, data) of the segments that may hold rows of [start, end), by
    newest row first, streamed (the caller stops once it has the rows it needs)."""
    query = select(LogSegment.id, LogSegment.rows, LogSegment.t_min, LogSegment.t_max, LogSegment.data).where(
        LogSegment.model_id == model_id, LogSegment.version == version
    )
    if start is not None:
        query = query.where(LogSegment.t_max >= start)
    if end is not None:
        query = query.where(LogSegment.t_min < end)
    if unrolled:
        query = query.where(LogSegment.rolled_up.is_(False))
    query = query.order_by(LogSegment.t_max.desc(), LogSegment.id.desc()).limit(SEGMENT_PAGE)
    after: Any = None
    while True:  # pages by (t_max, id): the caller usually stops within the first
        page = query
        if after is not None:
            page = query.where(
                or_(
                    LogSegment.t_max < after.t_max,
                    and_(LogSegment.t_max == after.t_max, LogSegment.id < after.id),
                )
            )
        rows: list[Any] = list(session.execute(page))
        yield from rows
        if len(rows) < SEGMENT_PAGE:
            return
        after = rows[-1]


def unrolled_segments(session: Session, limit: int) -> list[Row[Any]]:
    return list(
        session.execute(
            select(LogSegment.id, LogSegment.model_id, LogSegment.version, LogSegment.data)
            .where(LogSegment.rolled_up.is_(False))
            .order_by(LogSegment.id)
            .limit(limit)
        )
    )


def mark_rolled_up(session: Session, segment_ids: list[int]) -> None:
    session.execute(update(LogSegment).where(LogSegment.id.in_(segment_ids)).values(rolled_up=True))


def expired_segments(session: Session, before: datetime, limit: int) -> list[Row[Any]]:
    """Rolled-up segments logged before `before` (their hours are marked raw-pruned)."""
    return list(
        session.execute(
            select(LogSegment.id, LogSegment.model_id, LogSegment.version, LogSegment.t_min, LogSegment.t_max)
            .where(LogSegment.logged_at < before, LogSegment.rolled_up.is_(True))
            .order_by(LogSegment.id)
            .limit(limit)
        )
    )


def delete_segments(session: Session, segment_ids: list[int]) -> None:
    session.execute(delete(LogSegment).where(LogSegment.id.in_(segment_ids)))


def expired_rows(session: Session, before: datetime, limit: int) -> list[Row[Any]]:
    return list(
        session.execute(
            select(
                PredictionRecord.id,
                PredictionRecord.model_id,
                PredictionRecord.version,
                PredictionRecord.request_id,
                PredictionRecord.timestamp,
                PredictionRecord.prediction,
                PredictionRecord.probability,
                PredictionRecord.label,
                PredictionRecord.labelled_at,
            )
            .where(PredictionRecord.logged_at < before)
            .order_by(PredictionRecord.id)
            .limit(limit)
        )
    )


def delete_rows(session: Session, row_ids: list[int]) -> None:
    for i in range(0, len(row_ids), IN_CHUNK * 10):
        session.execute(
            delete(PredictionRecord).where(PredictionRecord.id.in_(row_ids[i : i + IN_CHUNK * 10]))
        )


# ---- hourly buckets ---------------------------------------------------------------------------


def get_buckets(
    session: Session, model_id: int, version: str, starts: Iterable[datetime]
) -> dict[int, MonitoringBucket]:
    """The buckets that exist, by their start in epoch microseconds."""
    wanted = list(starts)
    found = session.scalars(
        select(MonitoringBucket).where(
            MonitoringBucket.model_id == model_id,
            MonitoringBucket.version == version,
            MonitoringBucket.start.in_(wanted),
        )
    )
    return {micros(b.start): b for b in found}


def add_bucket(session: Session, bucket: MonitoringBucket) -> MonitoringBucket:
    session.add(bucket)
    return bucket


def buckets_between(
    session: Session, model_id: int, version: str, start: datetime | None, end: datetime | None
) -> list[MonitoringBucket]:
    query = select(MonitoringBucket).where(
        MonitoringBucket.model_id == model_id, MonitoringBucket.version == version
    )
    if start is not None:
        query = query.where(MonitoringBucket.start >= start)
    if end is not None:
        query = query.where(MonitoringBucket.start < end)
    return list(session.scalars(query.order_by(MonitoringBucket.start)))


def any_pruned(
    session: Session, model_id: int, version: str, start: datetime | None, end: datetime | None, labels: bool
) -> bool:
    """Whether some hour of [start, end) has lost raw rows (features, or labelled rows)."""
    flag = MonitoringBucket.labels_pruned if labels else MonitoringBucket.raw_pruned
    query = select(func.count()).where(
        MonitoringBucket.model_id == model_id, MonitoringBucket.version == version, flag.is_(True)
    )
    if start is not None:
        query = query.where(MonitoringBucket.start >= start)
    if end is not None:
        query = query.where(MonitoringBucket.start < end)
    return bool(session.scalar(query))


def mark_pruned(
    session: Session, model_id: int, version: str, start: datetime, end: datetime, labels: bool
) -> None:
    values = {"labels_pruned": True} if labels else {"raw_pruned": True}
    session.execute(
        update(MonitoringBucket)
        .where(
            MonitoringBucket.model_id == model_id,
            MonitoringBucket.version == version,
            MonitoringBucket.start >= start,
            MonitoringBucket.start <= end,
        )
        .values(**values)
    )


def delete_buckets_before(session: Session, before: datetime) -> int:
    result = session.execute(delete(MonitoringBucket).where(MonitoringBucket.start < before))
    return int(getattr(result, "rowcount", 0) or 0)
