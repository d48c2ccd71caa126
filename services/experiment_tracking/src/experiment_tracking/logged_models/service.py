"""MLflow 3 logged models: what `mlflow.<flavor>.log_model` and autologging create."""

from __future__ import annotations

import re
import uuid
from typing import Any

from mlops_kit.db import lock_key
from sqlalchemy.orm import Session

from experiment_tracking import paging, validation
from experiment_tracking.errors import InvalidValue, LoggedModelNotFound
from experiment_tracking.experiments import service as experiments
from experiment_tracking.logged_models import repository as repo
from experiment_tracking.values import now_ms

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
_NAME_FILTER = re.compile(r"""^\s*name\s*=\s*(['"])(?P<name>.*)\1\s*$""", re.IGNORECASE)


def create(
    session: Session,
    experiment_id: Any,
    *,
    name: str | None,
    model_type: str | None = None,
    source_run_id: str | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    experiment = experiments.load_row(session, experiment_id, locked=True, shared=True)
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    repo.insert_model(
        session,
        {
            "id": model_id,
            "experiment_id": experiment["id"],
            "name": name or model_id,
            "model_type": model_type,
            "source_run_id": source_run_id,
            "status": "LOGGED_MODEL_PENDING",
            "artifact_location": f"{experiment['artifact_location'].rstrip('/')}/models/{model_id}/artifacts",
            "lifecycle_stage": "active",
            "creation_time": now,
            "last_update_time": now,
            "params": params or {},
            "tags": tags or {},
        },
    )
    return get(session, model_id)


def get(session: Session, model_id: str) -> dict[str, Any]:
    row = repo.get_row(session, model_id)
    if row is None or row["lifecycle_stage"] != "active":
        raise LoggedModelNotFound(f"no logged model with id {model_id!r}", {"model_id": model_id})
    return row


def _locked(session: Session, model_id: str) -> dict[str, Any]:
    """The model, held until the commit: tags and params are merged into one JSON value, and two
    merges at once must not lose either's keys."""
    lock_key(session, "tracking.logged_model", model_id)
    return get(session, model_id)


def finalize(session: Session, model_id: str, status: str) -> dict[str, Any]:
    _locked(session, model_id)
    if status not in STATUSES:
        raise InvalidValue(f"status must be one of {', '.join(STATUSES)}; got {status!r}", {"status": status})
    repo.update_row(session, model_id, status=status, last_update_time=now_ms())
    return get(session, model_id)


def merge(session: Session, model_id: str, column: str, values: dict[str, str]) -> None:
    row = _locked(session, model_id)
    repo.update_row(session, model_id, **{column: {**row[column], **values}, "last_update_time": now_ms()})


def delete_tag(session: Session, model_id: str, key: str) -> None:
    row = _locked(session, model_id)
    tags = {k: v for k, v in row["tags"].items() if k != key}
    repo.update_row(session, model_id, tags=tags, last_update_time=now_ms())


def delete(session: Session, model_id: str) -> None:
    _locked(session, model_id)
    repo.update_row(session, model_id, lifecycle_stage="deleted", last_update_time=now_ms())


def search(
    session: Session,
    experiment_ids: list[Any],
    filter_string: str | None,
    max_results: int | None,
    page_token: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Filters supported: none, or `name = '...'` (what the MLflow client itself sends)."""
    name = None
    if filter_string and filter_string.strip():
        match = _NAME_FILTER.match(filter_string)
        if match is None:
            raise InvalidValue(
                f"unsupported logged-model filter {filter_string!r}; supported: name = '<name>'",
                {"filter": filter_string},
            )
        name = match.group("name")
    limit = validation.max_results(max_results, 100)
    offset = paging.decode(page_token)
    ids = [experiments.parse_id(e) for e in experiment_ids]
    rows = repo.search_rows(session, ids, name, limit + 1, offset)
    return rows[:limit], paging.next_token(offset, limit, len(rows))
