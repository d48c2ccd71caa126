"""What a historical retrieval asks for: the features (references or a feature service), the
output column names, and the checks on the entity rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from feature_store.errors import InvalidRequest
from feature_store.offline.frames import Frame
from feature_store.offline.pit import Target
from feature_store.registry.service import get_service
from feature_store.registry.views import FeatureDef, FeatureSetView, ViewCache, resolve_refs

KEYS = {"entity_rows", "features", "feature_service", "feature_service_version", "full_feature_names"}


@dataclass
class HistoricalQuery:
    refs: list[str] = field(default_factory=list)
    feature_service: str | None = None
    feature_service_version: int | None = None
    full_feature_names: bool = False

    def check(self, frame: Frame, max_rows: int) -> None:
        if bool(self.refs) == bool(self.feature_service):
            raise InvalidRequest("give either features or feature_service (one of them)")
        if frame.size == 0:
            raise InvalidRequest("entity_rows is empty: give at least one entity row")
        if frame.size > max_rows:
            raise InvalidRequest(
                f"{frame.size} entity rows exceed the limit of {max_rows}", {"max_rows": max_rows}
            )


def parse_request(body: Any) -> HistoricalQuery:
    if not isinstance(body, dict):
        raise InvalidRequest('the JSON body must be an object {"entity_rows": [...], "features": [...]}')
    unknown = sorted(set(body) - KEYS)
    if unknown:
        raise InvalidRequest(f"unknown field {unknown[0]!r}", {"fields": unknown, "allowed": sorted(KEYS)})
    if "entity_rows" not in body:
        raise InvalidRequest("entity_rows is required")
    refs = body.get("features") or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InvalidRequest("features must be a list of strings like 'set:feature'")
    service = body.get("feature_service")
    version = body.get("feature_service_version")
    if service is not None and not isinstance(service, str):
        raise InvalidRequest("feature_service must be a name")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise InvalidRequest("feature_service_version must be a positive integer")
    return HistoricalQuery(refs, service, version, bool(body.get("full_feature_names", False)))


def resolve_targets(views: ViewCache, session: Session, query: HistoricalQuery, frame: Frame) -> list[Target]:
    """The output feature columns, in order: bare feature names, or `set__feature` with
    full_feature_names (400 when bare names collide with each other or an entity column)."""
    pairs: list[tuple[FeatureSetView, FeatureDef]]
    if query.feature_service:
        svc = get_service(session, query.feature_service, query.feature_service_version)
        pairs = []
        for ref in svc.features:
            view = views.get(session, ref["feature_set"])
            pairs.append((view, view.feature(ref["feature"], ref.get("version"))))
    else:
        pairs = resolve_refs(views, session, query.refs)
    if not pairs:
        raise InvalidRequest("no features requested")
    targets = [
        Target(view, f, f"{view.name}__{f.name}" if query.full_feature_names else f.name) for view, f in pairs
    ]
    taken = set(frame.columns)
    for t in targets:
        if t.column in taken:
            raise InvalidRequest(
                f"output column {t.column!r} would appear twice: set full_feature_names to name "
                "features `set__feature`",
                {"column": t.column},
            )
        taken.add(t.column)
    return targets
