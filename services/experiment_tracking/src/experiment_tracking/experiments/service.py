"""Experiment rules: unique names, soft delete that carries the experiment's runs with it."""

from __future__ import annotations

from typing import Any, cast

from mlops_kit.bounds import INT64_MAX
from mlops_kit.db import lock_key
from sqlalchemy import update
from sqlalchemy.orm import Session

from experiment_tracking import paging, validation
from experiment_tracking.errors import ExperimentExists, ExperimentNotFound, InvalidState, InvalidValue
from experiment_tracking.experiments import repository as repo
from experiment_tracking.search import (
    ViewType,
    experiment_search_query,
    parse_experiment_filter,
    parse_order_by,
)
from experiment_tracking.tables import Run
from experiment_tracking.values import now_ms

DESCRIPTION_TAG = "mlflow.note.content"
VIEWS = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")


def parse_id(raw: Any) -> int:
    try:
        text = str(raw)
        value = int(text) if len(text) <= 20 else -1
    except ValueError:
        raise InvalidValue(
            f"experiment id must be an integer string, got {raw!r}", {"experiment_id": raw}
        ) from None
    if not 0 <= value <= INT64_MAX:
        raise InvalidValue(
            f"experiment id must be an integer in [0, 2^63-1], got {raw!r}"[:300], {"experiment_id": raw}
        )
    return value


def _read(row: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    return {
        "experiment_id": str(row["id"]),
        "name": row["name"],
        "artifact_location": row["artifact_location"],
        "lifecycle_stage": row["lifecycle_stage"],
        "creation_time": row["creation_time"],
        "last_update_time": row["last_update_time"],
        "tags": tags,
    }


def lock(session: Session, experiment_id: int, *, shared: bool = False) -> None:
    """Writes that change an experiment (rename, delete, restore) hold it exclusively until the
    commit; writes that depend on it staying as read (a new run) hold it shared."""
    lock_key(session, "tracking.experiment", experiment_id, shared=shared)


def lock_name(session: Session, name: str) -> None:
    """One experiment per name, also when two replicas create or rename to it at once."""
    lock_key(session, "tracking.experiment_name", name)


def load_row(
    session: Session, experiment_id: Any, *, locked: bool = False, shared: bool = False
) -> dict[str, Any]:
    if locked:
        lock(session, parse_id(experiment_id), shared=shared)
    row = repo.get_row(session, parse_id(experiment_id))
    if row is None:
        raise ExperimentNotFound(
            f"no experiment with id {experiment_id!r}", {"experiment_id": str(experiment_id)}
        )
    return row


def get(session: Session, experiment_id: Any) -> dict[str, Any]:
    row = load_row(session, experiment_id)
    return _read(row, repo.tags_by_ids(session, [row["id"]])[row["id"]])


def get_by_name(session: Session, name: str) -> dict[str, Any]:
    row = repo.get_row_by_name(session, name)
    if row is None:
        raise ExperimentNotFound(f"no experiment named {name!r}", {"name": name})
    return _read(row, repo.tags_by_ids(session, [row["id"]])[row["id"]])


def _check_tags(tags: dict[str, Any]) -> dict[str, str]:
    return {
        validation.key("tag", k): validation.text("tag", k, v, validation.MAX_EXPERIMENT_TAG_VALUE)
        for k, v in tags.items()
    }


def create(
    session: Session,
    name: str,
    *,
    artifact_location: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> str:
    name = validation.experiment_name(name)
    artifact_location = validation.artifact_location(artifact_location)
    clean_tags = _check_tags(tags or {})
    if description is not None:
        clean_tags[DESCRIPTION_TAG] = description
    lock_name(session, name)
    existing = repo.get_row_by_name(session, name)
    if existing is not None:
        state = (
            " (deleted; restore it or pick another name)" if existing["lifecycle_stage"] == "deleted" else ""
        )
        raise ExperimentExists(
            f"experiment {name!r} already exists{state}",
            {"name": name, "experiment_id": str(existing["id"])},
        )
    now = now_ms()
    values = {"name": name, "artifact_location": artifact_location or "", "lifecycle_stage": "active"}
    experiment_id = repo.insert_experiment(session, {**values, "creation_time": now, "last_update_time": now})
    if not artifact_location:
        repo.update_row(session, experiment_id, artifact_location=f"mlflow-artifacts:/{experiment_id}")
    repo.set_tags(session, experiment_id, clean_tags)
    return str(experiment_id)


def rename(session: Session, experiment_id: Any, new_name: str) -> None:
    row = load_row(session, experiment_id, locked=True)
    if row["lifecycle_stage"] != "active":
        raise InvalidState(f"experiment {row['name']!r} is deleted; restore it before renaming it")
    new_name = validation.experiment_name(new_name)
    if new_name == row["name"]:
        return
    lock_name(session, new_name)
    if repo.get_row_by_name(session, new_name) is not None:
        raise ExperimentExists(f"experiment {new_name!r} already exists", {"name": new_name})
    repo.update_row(session, row["id"], name=new_name, last_update_time=now_ms())


def set_tags(session: Session, experiment_id: Any, tags: dict[str, Any]) -> None:
    row = load_row(session, experiment_id)
    repo.set_tags(session, row["id"], _check_tags(tags))
    repo.update_row(session, row["id"], last_update_time=now_ms())


def delete_tag(session: Session, experiment_id: Any, key: str) -> None:
    row = load_row(session, experiment_id)
    if not repo.delete_tag(session, row["id"], key):
        raise InvalidValue(f"experiment {row['id']} has no tag {key!r}", {"key": key})


def _set_stage(session: Session, experiment_id: Any, stage: str) -> None:
    row = load_row(session, experiment_id, locked=True)  # no run is created meanwhile
    if row["id"] == 0 and stage == "deleted":
        raise InvalidState("the default experiment (id 0) cannot be deleted")
    now = now_ms()
    deleted = now if stage == "deleted" else None
    repo.update_row(session, row["id"], lifecycle_stage=stage, last_update_time=now, deleted_time=deleted)
    session.execute(
        update(Run).where(Run.experiment_id == row["id"]).values(lifecycle_stage=stage, deleted_time=deleted)
    )


def delete(session: Session, experiment_id: Any) -> None:
    _set_stage(session, experiment_id, "deleted")


def restore(session: Session, experiment_id: Any) -> None:
    _set_stage(session, experiment_id, "active")


def check_view(view: str | None) -> ViewType:
    upper = (view or "ACTIVE_ONLY").upper()
    if upper in VIEWS:
        return cast(ViewType, upper)
    raise InvalidValue(f"view_type must be one of {', '.join(VIEWS)}; got {view!r}", {"view_type": view})


def search(
    session: Session,
    *,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
    view: str | None = None,
    max_results: int | None = None,
    page_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    limit = validation.max_results(max_results, 1000)
    offset = paging.decode(page_token)
    query = experiment_search_query(
        parse_experiment_filter(filter_string), parse_order_by(order_by, kind="experiments"), check_view(view)
    )
    ids = repo.ids_for(session, query, limit + 1, offset)
    page = ids[:limit]
    rows, tags = repo.rows_by_ids(session, page), repo.tags_by_ids(session, page)
    return [_read(rows[i], tags[i]) for i in page], paging.next_token(offset, limit, len(ids))
