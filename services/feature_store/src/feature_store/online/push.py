"""Streaming push: a few rows checked and kept exactly as batch ingestion checks and keeps them
(`offline.ingest`: same validation, same offline rows, same statistics), then made the online
values where they are the newest.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from feature_store.errors import InvalidRequest
from feature_store.offline import ingest
from feature_store.offline.frames import frame_from_records
from feature_store.online.base import OnlineRow
from feature_store.registry.views import FeatureSetView

MAX_PUSH_ROWS = 1000


def rows_of(payload: Any) -> list[Any]:
    """`{"rows": [...]}`, a list of rows, or one row object."""
    if isinstance(payload, dict) and isinstance(payload.get("rows"), list):
        rows: list[Any] = payload["rows"]
    elif isinstance(payload, list):
        rows = payload
    elif isinstance(payload, dict):
        rows = [payload]
    else:
        raise InvalidRequest('give a row object or {"rows": [...]}', {})
    if not rows:
        raise InvalidRequest("no rows to push", {})
    return rows


def write_offline(
    session: Session, view: FeatureSetView, version: int, rows: list[Any]
) -> tuple[dict[str, Any], list[OnlineRow]]:
    """Check every row (422 naming rows and columns, nothing written) and insert them with their
    statistics in the caller's transaction; returns ingestion's summary and the online rows."""
    prepared = ingest.prepare(view, version, frame_from_records(rows, "rows"), time.time_ns() // 1000)
    summary = ingest.write(session, view, prepared)
    online = list(zip(prepared.keys, prepared.event_ts, prepared.created_ts, prepared.values, strict=True))
    return summary, online
