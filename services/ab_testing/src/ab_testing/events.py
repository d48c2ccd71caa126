"""Outcome events on the way in: validated as a batch (all or nothing), de-duplicated on their event
id, and appended to a log of pending events in the same transaction. The request is answered
once the events are durable; `ab_testing.folding` folds the log into the users' aggregates and the
variants' sufficient statistics in large chunks (and before any read of those statistics).

This is the ingestion hot path: per event it costs a validation, an assignment when the event
names no variant (vectorized over the batch), one insert of its id and one append, with the
driver's executemany (or COPY)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_client.ab_routing import CompiledExperiment, compile_definition
from mlops_kit.errors import Unprocessable
from pydantic import BaseModel, ConfigDict, Field, StrictFloat
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ab_testing.bulk import variants_of
from ab_testing.errors import ExperimentNotCollecting, MissingValue, UnknownMetric, UnknownVariant
from ab_testing.events_repository import insert_pending, store_event_ids
from ab_testing.experiments import definition, get_experiment
from ab_testing.tables import Experiment, Status


class EventIn(BaseModel):
    # numbers are JSON numbers (no booleans, no numeric strings) and finite
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    experiment: str = Field(min_length=1, max_length=100)
    user_id: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=100)
    value: StrictFloat | None = None
    covariate: StrictFloat | None = Field(default=None, description="the user's pre-period value (CUPED)")
    variant: str | None = Field(default=None, max_length=100)
    timestamp: datetime | None = Field(
        default=None, description="when it happened (accepted; the statistics do not depend on it)"
    )


def metric_components(metrics: list[dict[str, Any]]) -> set[str]:
    """The metric names events may carry: binary and continuous metrics, and the numerator and
    denominator components of ratio metrics (a ratio itself is never sent)."""
    names = {m["name"] for m in metrics if m["type"] != "ratio"}
    for m in metrics:
        if m["type"] == "ratio":
            names.update((m["numerator"], m["denominator"]))
    return names


@dataclass
class _Target:
    row: Experiment
    id: str  # row.id and row.phase, read once: ORM attribute access per event showed in profiles
    phase: int
    compiled: CompiledExperiment
    variants: set[str]
    components: set[str]


def _target(session: Session, ref: str, index: int) -> _Target:
    row = get_experiment(session, ref)
    if row.status in (Status.DRAFT, Status.ARCHIVED):
        raise _fail(index, f"experiment {row.key!r} is {row.status}", ExperimentNotCollecting)
    return _Target(
        row=row,
        id=row.id,
        phase=row.phase,
        compiled=compile_definition(definition(session, row)),
        variants={v["name"] for v in row.variants},
        components=metric_components(row.metrics),
    )


def _fail(index: int, message: str, error: type[Unprocessable], **details: Any) -> Unprocessable:
    return error(f"event {index}: {message}", {"index": index, **details})


Row = tuple[str, int, str, str, str, float | None, float | None]


def ingest(session: Session, events: list[EventIn], shards: int = 1) -> dict[str, Any]:
    """Check every event, then store the new ones as pending (split into `shards` by user);
    raises (nothing stored) on the first bad one."""
    targets, per_event, unassigned = _check(session, events)
    assigned = {ref: iter(variants_of(targets[ref].compiled, users)) for ref, users in unassigned.items()}
    rows, ids, skipped = _rows(events, per_event, assigned)
    fresh, duplicates = _new_events(session.connection(), rows, ids)
    append_pending(session.connection(), fresh, shards)
    return {"accepted": len(fresh), "duplicates": duplicates, "not_in_experiment": skipped}


def _check(
    session: Session, events: list[EventIn]
) -> tuple[dict[str, _Target], list[_Target], dict[str, list[str]]]:
    """Each event's experiment (raises on the first bad event), and per experiment the users of
    the events that name no variant."""
    targets: dict[str, _Target] = {}
    per_event: list[_Target] = []
    unassigned: dict[str, list[str]] = {}  # experiment -> users of events without a variant
    for i, ev in enumerate(events):
        target = targets.get(ev.experiment)
        if target is None:
            target = targets[ev.experiment] = _target(session, ev.experiment, i)
            unassigned[ev.experiment] = []
        per_event.append(target)
        _check_event(i, ev, target)
        if ev.variant is None:
            unassigned[ev.experiment].append(ev.user_id)
    return targets, per_event, unassigned


def _check_event(i: int, ev: EventIn, target: _Target) -> None:
    if ev.metric not in target.components:
        raise _fail(
            i,
            f"experiment {target.row.key!r} has no metric {ev.metric!r}; events may name "
            f"{sorted(target.components)}",
            UnknownMetric,
            metric=ev.metric,
        )
    if ev.value is None and ev.covariate is None:
        raise _fail(i, "an event needs a 'value' (or a pre-period 'covariate')", MissingValue)
    if ev.variant is not None and ev.variant not in target.variants:
        raise _fail(
            i,
            f"experiment {target.row.key!r} has no variant {ev.variant!r}; it has {sorted(target.variants)}",
            UnknownVariant,
            variant=ev.variant,
        )


def _rows(
    events: list[EventIn], per_event: list[_Target], assigned: dict[str, Iterator[str | None]]
) -> tuple[list[Row], list[str | None], int]:
    """The log rows of the events whose user is in the experiment, their ids, and how many were
    not."""
    rows: list[Row] = []
    ids: list[str | None] = []
    skipped = 0
    for ev, target in zip(events, per_event, strict=True):
        variant = ev.variant if ev.variant is not None else next(assigned[ev.experiment])
        if variant is None:  # the user is not in the experiment
            skipped += 1
            continue
        rows.append((target.id, target.phase, ev.metric, ev.user_id, variant, ev.value, ev.covariate))
        ids.append(ev.event_id)
    return rows, ids, skipped


def _new_events(conn: Connection, rows: list[Row], ids: list[str | None]) -> tuple[list[Row], int]:
    """The rows whose (experiment, event id) was never accepted (events without an id always
    are), and how many were duplicates; stores the new ids."""
    keyed: dict[tuple[str, str], int] = {}  # the first row of each id in the batch
    for i, (row, event_id) in enumerate(zip(rows, ids, strict=True)):
        if event_id is not None:
            keyed.setdefault((row[0], event_id), i)
    if not keyed:
        return rows, 0
    stored = store_event_ids(conn, list(keyed))
    keep = (
        {i for key, i in keyed.items() if key in stored} if len(stored) < len(keyed) else set(keyed.values())
    )
    fresh = [
        row for i, (row, event_id) in enumerate(zip(rows, ids, strict=True)) if event_id is None or i in keep
    ]
    return fresh, len(rows) - len(fresh)


def shard_of(user_id: str, shards: int) -> int:
    """The user's shard: stable across processes and restarts (CRC-32 of the id)."""
    return zlib.crc32(user_id.encode()) % shards


def append_pending(conn: Connection, rows: list[Row], shards: int = 1) -> None:
    """The request's events as one row of the log per shard (one write, however many events)."""
    if not rows:
        return
    parts: dict[int, list[tuple[Any, ...]]] = {}
    if shards == 1:
        parts[0] = rows
    else:
        for row in rows:
            parts.setdefault(shard_of(row[3], shards), []).append(row)
    insert_pending(conn, parts)
