"""Online serving: resolved requests (plans) cached per process, one store read, one JSON encode.

A plan is what a request's feature references resolve to (feature sets, features, output keys,
entity-key builders). It is reused while every feature set in it is still the one the view cache
holds (`ViewCache.peek`), so a steady stream of requests never touches the registry database.

Answer shape (one object per requested entity, in request order):

    {"features": ["age", ...], "feature_refs": ["user_features:age", ...],
     "results": [{"entity": "user_123", "values": {"age": 31, ...},
                  "statuses": {"age": "PRESENT", ...},
                  "event_timestamps": {"age": "2024-05-01T00:00:00Z", ...}}]}

Output keys are feature names, except that a name requested from more than one feature set is
keyed `set:feature` (for each of those sets). Statuses: PRESENT; MISSING (no row for the entity, or
its row has no value (null) for the feature; value and timestamp null); EXPIRED (the row is older
than the feature set's TTL at read time; value null, timestamp of the row).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from mlops_kit.db import Database
from sqlalchemy.orm import Session

from feature_store.errors import FeatureServiceNotFound, InvalidRequest
from feature_store.keys import Keyer, entity_keyer
from feature_store.online.base import OnlineStore, Record, RecordKey
from feature_store.online.metrics import OnlineMetrics
from feature_store.registry import repository as repo
from feature_store.registry.views import FeatureDef, FeatureSetView, ViewCache, resolve_refs
from feature_store.settings import FeatureStoreSettings
from feature_store.types import from_micros

PRESENT, MISSING, EXPIRED = "PRESENT", "MISSING", "EXPIRED"
MAX_CACHED_PLANS = 1024

iso_utc = lru_cache(maxsize=8192)(from_micros)
# (output key, index into the plan's views, feature name, is a timestamp)
Column = tuple[str, int, str, bool]


@dataclass(frozen=True, slots=True)
class Plan:
    views: tuple[FeatureSetView, ...]
    keyers: tuple[Keyer, ...]
    ttl_us: tuple[int | None, ...]
    columns: tuple[Column, ...]
    header: bytes  # the answer up to its results list
    made: float
    fast: FastPath | None  # set when the plan reads one feature set and no timestamp feature


@dataclass(frozen=True, slots=True)
class FastPath:
    keys: tuple[str, ...]
    pick: Callable[[dict[str, Any]], tuple[Any, ...]]  # the requested values of a row, in order
    present: dict[str, str]  # shared by every answer: orjson only reads them
    missing: dict[str, dict[str, Any]]


def _fast_path(views: list[FeatureSetView], columns: tuple[Column, ...]) -> FastPath | None:
    if len(views) != 1 or any(is_ts for *_, is_ts in columns):
        return None
    keys = tuple(c[0] for c in columns)
    names = [c[2] for c in columns]
    getter = itemgetter(*names)
    pick = getter if len(names) > 1 else (lambda held: (getter(held),))
    missing: dict[str, dict[str, Any]] = {
        "values": dict.fromkeys(keys),
        "statuses": dict.fromkeys(keys, MISSING),
        "event_timestamps": dict.fromkeys(keys),
    }
    return FastPath(keys, pick, dict.fromkeys(keys, PRESENT), missing)


def make_plan(pairs: Sequence[tuple[FeatureSetView, FeatureDef]]) -> Plan:
    if not pairs:
        raise InvalidRequest("no features requested: give features or a feature_service", {})
    views: list[FeatureSetView] = []
    for view, _ in pairs:
        if all(v.id != view.id for v in views):
            views.append(view)
    index = {view.id: i for i, view in enumerate(views)}
    owners: dict[str, set[str]] = {}
    for view, feature in pairs:
        owners.setdefault(feature.name, set()).add(view.name)
    columns = tuple(
        (
            f.name if len(owners[f.name]) == 1 else f"{view.name}:{f.name}",
            index[view.id],
            f.name,
            f.type == "timestamp",
        )
        for view, f in pairs
    )
    refs = [f"{view.name}:{f.name}" for view, f in pairs]
    header = b'{"features":%s,"feature_refs":%s,"results":' % (
        orjson.dumps([c[0] for c in columns]),
        orjson.dumps(refs),
    )
    return Plan(
        views=tuple(views),
        keyers=tuple(entity_keyer(v) for v in views),
        ttl_us=tuple(v.ttl_seconds * 1_000_000 if v.ttl_seconds else None for v in views),
        columns=columns,
        header=header,
        made=time.monotonic(),
        fast=_fast_path(views, columns),
    )


class PlanCache:
    """Plans by request shape; a plan is good while its views are the cached ones (one per app,
    made in its lifespan beside the view cache it checks against)."""

    def __init__(self, views: ViewCache, max_age_seconds: float) -> None:
        self.views = views
        self.max_age = max_age_seconds
        self._plans: dict[Hashable, Plan] = {}

    def get(self, key: Hashable) -> Plan | None:
        plan = self._plans.get(key)
        if plan is None or time.monotonic() - plan.made >= self.max_age:
            return None
        views = self.views
        for view in plan.views:
            if views.peek(view.name) is not view:
                return None
        return plan

    def put(self, key: Hashable, plan: Plan) -> None:
        if len(self._plans) >= MAX_CACHED_PLANS:
            self._plans.clear()
        self._plans[key] = plan


@dataclass(frozen=True, slots=True)
class Serving:
    """What serving needs besides the online store (one per app, made in its lifespan)."""

    db: Database
    plans: PlanCache
    metrics: OnlineMetrics
    settings: FeatureStoreSettings


def plan_for_refs(db: Database, views: ViewCache, refs: list[str], default_set: str | None) -> Plan:
    """Blocking (registry reads): run in a worker thread."""
    with db.session(write=False) as session:
        return make_plan(resolve_refs(views, session, refs, default_set))


def plan_for_service(db: Database, views: ViewCache, name: str, version: int | None) -> Plan:
    """Blocking (registry reads): the features a feature service version pins, each with the type
    of the feature-set version it was pinned to."""
    with db.session(write=False) as session:
        return make_plan(_service_features(views, session, name, version))


def _service_features(
    views: ViewCache, session: Session, name: str, version: int | None
) -> list[tuple[FeatureSetView, FeatureDef]]:
    refs = repo.service_refs(session, name, version)
    if refs is None:
        what = f"feature service {name!r}" + (f" version {version}" if version is not None else "")
        raise FeatureServiceNotFound(f"{what} does not exist", {"feature_service": name, "version": version})
    pairs = []
    for ref in refs:
        view = views.get(session, ref["feature_set"])
        pairs.append((view, view.feature(ref["feature"], ref.get("version"))))
    return pairs


def record_keys(plan: Plan, entities: Sequence[Any]) -> list[RecordKey]:
    """(feature set id, entity key) per entity and feature set, entity-major."""
    if len(plan.views) == 1:
        set_id, keyer = plan.views[0].id, plan.keyers[0]
        return [(set_id, keyer(raw)) for raw in entities]
    pairs = tuple(zip([v.id for v in plan.views], plan.keyers, strict=True))
    return [(set_id, keyer(raw)) for raw in entities for set_id, keyer in pairs]


async def serve(store: OnlineStore, plan: Plan, entities: Sequence[Any]) -> bytes:
    keys = record_keys(plan, entities)
    records = await store.read(keys)
    return render(plan, entities, records, time.time_ns() // 1000)


def render(plan: Plan, entities: Sequence[Any], records: Sequence[Record | None], now_us: int) -> bytes:
    fast = plan.fast
    if fast is None:
        n = len(plan.views)
        results = [
            _result(plan, entity, records[i * n : i * n + n], now_us) for i, entity in enumerate(entities)
        ]
    else:
        results = _render_one_set(plan, fast, entities, records, now_us)
    return plan.header + orjson.dumps(results) + b"}"


def _render_one_set(
    plan: Plan, fast: FastPath, entities: Sequence[Any], records: Sequence[Record | None], now_us: int
) -> list[dict[str, Any]]:
    """One feature set, no timestamp-typed feature: whole dicts built in C, the constant ones shared."""
    keys, pick, ttl = fast.keys, fast.pick, plan.ttl_us[0]
    results = []
    for entity, record in zip(entities, records, strict=True):
        if record is None:
            results.append({"entity": entity, **fast.missing})
            continue
        event_ts, _, held = record
        try:
            got = pick(held)
        except KeyError:
            got = (None,)
        if None in got or (ttl is not None and now_us - event_ts > ttl):  # a value lacking, or expired
            results.append(_result(plan, entity, (record,), now_us))
            continue
        values = dict(zip(keys, got, strict=True))
        results.append(
            {
                "entity": entity,
                "values": values,
                "statuses": fast.present,
                "event_timestamps": dict.fromkeys(keys, iso_utc(event_ts)),
            }
        )
    return results


def _result(plan: Plan, entity: Any, records: Sequence[Record | None], now_us: int) -> dict[str, Any]:
    """One entity's answer from its record in each feature set of the plan."""
    rows: list[tuple[dict[str, Any] | None, bool, str | None]] = []  # (values, expired?, event time)
    for record, ttl in zip(records, plan.ttl_us, strict=True):
        if record is None:
            rows.append((None, False, None))
        else:
            event_ts, _, stored = record
            rows.append((stored, ttl is not None and now_us - event_ts > ttl, iso_utc(event_ts)))
    values: dict[str, Any] = {}
    statuses: dict[str, str] = {}
    stamps: dict[str, str | None] = {}
    for key, g, name, is_ts in plan.columns:
        held, expired, stamp = rows[g]
        value = None if held is None else held.get(name)
        if value is None:
            values[key], statuses[key], stamps[key] = None, MISSING, None
        elif expired:
            values[key], statuses[key], stamps[key] = None, EXPIRED, stamp
        else:
            if is_ts and type(value) is int:
                value = iso_utc(value)
            values[key], statuses[key], stamps[key] = value, PRESENT, stamp
    return {"entity": entity, "values": values, "statuses": statuses, "event_timestamps": stamps}
