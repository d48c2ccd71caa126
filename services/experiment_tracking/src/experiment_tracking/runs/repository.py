"""Every SQL statement about runs and what is logged to them (Core statements: the hot paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_kit.orm import dialect_insert
from sqlalchemy import Executable, Select, Table, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from experiment_tracking.tables import LatestMetric, Metric, Param, Run, RunDataset, RunOutput, RunTag

R: Table = Run.__table__  # type: ignore[assignment]
P: Table = Param.__table__  # type: ignore[assignment]
T: Table = RunTag.__table__  # type: ignore[assignment]
M: Table = Metric.__table__  # type: ignore[assignment]
L: Table = LatestMetric.__table__  # type: ignore[assignment]
D: Table = RunDataset.__table__  # type: ignore[assignment]
OUT: Table = RunOutput.__table__  # type: ignore[assignment]


# The logging hot path runs the same few statements thousands of times a second: they are built
# once (per dialect where the SQL differs) and run on the session's connection, which skips both
# statement construction and the ORM layer of Session.execute (a third of the time per call).
_STATE = select(R.c.lifecycle_stage, R.c.status).where(R.c.id == bindparam("run_id"))
_INSERT_METRICS = insert(M)
_PREPARED: dict[tuple[str, str], Executable] = {}


def _prepared(session: Session, name: str) -> Executable:
    dialect = session.get_bind().dialect.name
    stmt = _PREPARED.get((dialect, name))
    if stmt is None:
        stmt = _PREPARED[(dialect, name)] = _BUILDERS[name](session)
    return stmt


def _upsert_latest(session: Session) -> Executable:
    """MLflow's rule: the point with the greatest (step, timestamp, value) is the latest."""
    stmt = dialect_insert(session, L)
    new = stmt.excluded
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["run_id", "key"],
        set_={"value": new.value, "is_nan": new.is_nan, "timestamp": new.timestamp, "step": new.step},
        where=tuple_(new.step, new.timestamp, new.value) >= tuple_(L.c.step, L.c.timestamp, L.c.value),
    )


def _insert_params(session: Session) -> Executable:
    """Concurrent writers of the same key: the loser inserts nothing and re-checks the value."""
    return dialect_insert(session, P).on_conflict_do_nothing(index_elements=["run_id", "key"])  # type: ignore[no-any-return]


def _set_tags(session: Session) -> Executable:
    stmt = dialect_insert(session, T)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
    )


_BUILDERS = {"upsert_latest": _upsert_latest, "insert_params": _insert_params, "set_tags": _set_tags}


def insert_run(session: Session, values: dict[str, Any]) -> None:
    session.execute(insert(R).values(**values))


def run_row(session: Session, run_id: str) -> dict[str, Any] | None:
    row = session.execute(select(R).where(R.c.id == run_id)).mappings().first()
    return dict(row) if row else None


def run_state(session: Session, run_id: str) -> tuple[str, str] | None:
    """(lifecycle_stage, status): the one lookup every logging call needs."""
    row = session.connection().execute(_STATE, {"run_id": run_id}).first()
    return (row[0], row[1]) if row else None


def run_rows(session: Session, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {row["id"]: dict(row) for row in session.execute(select(R).where(R.c.id.in_(ids))).mappings()}


def update_run(session: Session, run_id: str, **values: Any) -> None:
    session.execute(update(R).where(R.c.id == run_id).values(**values))


def _grouped(session: Session, query: Select[Any], ids: Sequence[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {i: [] for i in ids}
    for row in session.execute(query):
        found[row[0]].append(row[1:])
    return found


def params_for(session: Session, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    rows = _grouped(session, select(P.c.run_id, P.c.key, P.c.value).where(P.c.run_id.in_(ids)), ids)
    return {run_id: dict(pairs) for run_id, pairs in rows.items()}


def tags_for(session: Session, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    rows = _grouped(session, select(T.c.run_id, T.c.key, T.c.value).where(T.c.run_id.in_(ids)), ids)
    return {run_id: dict(pairs) for run_id, pairs in rows.items()}


def latest_for(session: Session, ids: Sequence[str]) -> dict[str, list[Any]]:
    """Per run: (key, value, is_nan, timestamp, step) rows."""
    query = select(L.c.run_id, L.c.key, L.c.value, L.c.is_nan, L.c.timestamp, L.c.step).where(
        L.c.run_id.in_(ids)
    )
    return _grouped(session, query.order_by(L.c.run_id, L.c.key), ids)


def datasets_for(session: Session, ids: Sequence[str]) -> dict[str, list[Any]]:
    query = select(
        D.c.run_id, D.c.name, D.c.digest, D.c.source_type, D.c.source, D.c.schema, D.c.profile, D.c.tags
    ).where(D.c.run_id.in_(ids))
    return _grouped(session, query, ids)


def outputs_for(session: Session, ids: Sequence[str]) -> dict[str, list[Any]]:
    return _grouped(
        session, select(OUT.c.run_id, OUT.c.model_id, OUT.c.step).where(OUT.c.run_id.in_(ids)), ids
    )


def existing_params(session: Session, run_id: str, keys: Sequence[str]) -> dict[str, str]:
    query = select(P.c.key, P.c.value).where(P.c.run_id == run_id, P.c.key.in_(keys))
    return {key: value for key, value in session.execute(query)}


def insert_params(session: Session, run_id: str, params: dict[str, str]) -> None:
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
    session.connection().execute(_prepared(session, "insert_params"), rows)


def set_tags(session: Session, run_id: str, tags: dict[str, str]) -> None:
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]
    session.connection().execute(_prepared(session, "set_tags"), rows)


def delete_tag(session: Session, run_id: str, key: str) -> int:
    result = session.execute(delete(T).where(T.c.run_id == run_id, T.c.key == key))
    return int(getattr(result, "rowcount", 0) or 0)


def insert_metrics(session: Session, rows: list[dict[str, Any]]) -> None:
    session.connection().execute(_INSERT_METRICS, rows)


def upsert_latest(session: Session, rows: list[dict[str, Any]]) -> None:
    session.connection().execute(_prepared(session, "upsert_latest"), rows)


def history(session: Session, run_id: str, key: str, limit: int, offset: int) -> list[Any]:
    query = (
        select(M.c.value, M.c.is_nan, M.c.timestamp, M.c.step, M.c.run_id)
        .where(M.c.run_id == run_id, M.c.key == key)
        .order_by(M.c.timestamp, M.c.step, M.c.value, M.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.execute(query))


def histories(session: Session, run_ids: Sequence[str], key: str, limit: int) -> list[Any]:
    query = (
        select(M.c.run_id, M.c.value, M.c.is_nan, M.c.timestamp, M.c.step)
        .where(M.c.run_id.in_(run_ids), M.c.key == key)
        .order_by(M.c.run_id, M.c.step, M.c.timestamp, M.c.id)
        .limit(limit)
    )
    return list(session.execute(query))


def add_datasets(session: Session, rows: list[dict[str, Any]]) -> None:
    stmt = dialect_insert(session, D)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "name", "digest"], set_={"tags": stmt.excluded.tags}
    )
    session.execute(stmt, rows)


def add_outputs(session: Session, rows: list[dict[str, Any]]) -> None:
    stmt = dialect_insert(session, OUT).on_conflict_do_nothing(index_elements=["run_id", "model_id"])
    session.execute(stmt, rows)


def run_ids_for(session: Session, query: Select[Any], limit: int, offset: int) -> list[str]:
    return [row[0] for row in session.execute(query.limit(limit).offset(offset))]
