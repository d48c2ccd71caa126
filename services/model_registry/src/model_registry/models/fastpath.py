"""The hot read path's answer: one version, rendered straight from its SQL row to JSON.

The row comes from one SQL statement (`repository.version_row`: aliases and artifacts aggregated
as JSON), no ORM objects; the fields are `version_fields`, the same mapping the ORM path hands
to `ModelVersionRead`, so the two answer alike (the tests hold both paths to that).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from model_registry.models.schemas import version_fields
from model_registry.types import iso_utc


def _json_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return orjson.loads(value) if isinstance(value, str | bytes) else list(value)


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render(name: str, row: Any) -> bytes:
    artifacts = _json_list(row.artifacts)
    for artifact in artifacts:
        artifact["created_at"] = _datetime(artifact["created_at"])
    body = version_fields(name, row, _json_list(row.aliases), artifacts)
    return orjson.dumps(body, default=_iso, option=orjson.OPT_PASSTHROUGH_DATETIME)
