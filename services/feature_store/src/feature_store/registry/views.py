"""What the data plane (ingestion, serving, retrieval, materialization) needs to know about the
registry, as frozen views read once and cached per process.

A replica serves from its cache for at most `schema_cache_seconds` before it checks the feature
set's `revision` again; writes made through this process invalidate its cache at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from feature_store.errors import FeatureNotFound, FeatureSetNotFound, InvalidRequest
from feature_store.keys import Keyer, entity_keyer
from feature_store.registry import repository as repo


@dataclass(frozen=True)
class FeatureDef:
    name: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class FeatureSetView:
    id: int
    name: str
    entity: str
    join_keys: tuple[str, ...]
    entity_value_type: str  # string | int
    ttl_seconds: int | None
    latest_version: int
    revision: int
    versions: dict[int, tuple[FeatureDef, ...]] = field(hash=False)

    def features(self, version: int | None = None) -> tuple[FeatureDef, ...]:
        wanted = self.latest_version if version is None else version
        if wanted not in self.versions:
            raise FeatureSetNotFound(
                f"feature set {self.name!r} has no version {wanted}",
                {"feature_set": self.name, "version": wanted, "versions": sorted(self.versions)},
            )
        return self.versions[wanted]

    def feature(self, name: str, version: int | None = None) -> FeatureDef:
        for feature in self.features(version):
            if feature.name == name:
                return feature
        raise FeatureNotFound(
            f"feature set {self.name!r} has no feature {name!r}",
            {"feature_set": self.name, "feature": name},
        )

    def entity_key(self, raw: Any) -> str:
        """The stored key of one entity: the value of its single join key as text, or for
        composite keys an object holding every join key (see feature_store.keys)."""
        return self._keyer(raw)

    @cached_property
    def _keyer(self) -> Keyer:
        return entity_keyer(self)


def load_view(session: Session, name: str) -> FeatureSetView:
    row = repo.feature_set_with_entity(session, name)
    if row is None:
        raise FeatureSetNotFound(f"feature set {name!r} does not exist", {"feature_set": name})
    fs, entity = row
    versions = {
        v.version: tuple(FeatureDef(f["name"], f["type"], f.get("description", "")) for f in v.features)
        for v in repo.versions(session, fs.id)
    }
    return FeatureSetView(
        id=fs.id,
        name=fs.name,
        entity=entity.name,
        join_keys=tuple(entity.join_keys),
        entity_value_type=entity.value_type,
        ttl_seconds=fs.ttl_seconds,
        latest_version=fs.latest_version,
        revision=fs.revision,
        versions=versions,
    )


class ViewCache:
    """Per-process cache of feature-set views (one per app, made in its lifespan)."""

    def __init__(self, max_age_seconds: float) -> None:
        self.max_age = max_age_seconds
        self._views: dict[str, tuple[float, FeatureSetView]] = {}

    def get(self, session: Session, name: str) -> FeatureSetView:
        """The view of feature set `name` (404 FEATURE_SET_NOT_FOUND naming it)."""
        now = time.monotonic()
        cached = self._views.get(name)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]
        if cached is not None:
            revision = repo.feature_set_revision(session, name)
            if revision == cached[1].revision:
                self._views[name] = (now, cached[1])
                return cached[1]
        view = load_view(session, name)
        self._views[name] = (now, view)
        return view

    def peek(self, name: str) -> FeatureSetView | None:
        """A fresh cached view without touching the database (the serving fast path)."""
        cached = self._views.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        return None

    def invalidate(self, name: str | None = None) -> None:
        if name is None:
            self._views.clear()
        else:
            self._views.pop(name, None)


def resolve_refs(
    views: ViewCache, session: Session, refs: list[str], default_set: str | None = None
) -> list[tuple[FeatureSetView, FeatureDef]]:
    """Feature references to (view, feature), in order, duplicates removed.

    A reference is `set:feature`, `set:*` (every feature of the set's latest version), or a bare
    `feature` name: looked up in `default_set` when given, else it must be unique across feature
    sets (400 naming the candidates when it is not, 404 when no set has it).
    """
    out: list[tuple[FeatureSetView, FeatureDef]] = []
    seen: set[tuple[str, str]] = set()
    bare: list[str] = []
    for ref in refs:
        ref = ref.strip()
        if not ref:
            continue
        if ":" in ref:
            set_name, feature = ref.split(":", 1)
            view = views.get(session, set_name)
            chosen = view.features() if feature == "*" else (view.feature(feature),)
        elif default_set:
            view = views.get(session, default_set)
            chosen = (view.feature(ref),)
        else:
            bare.append(ref)
            continue
        for f in chosen:
            if (view.name, f.name) not in seen:
                seen.add((view.name, f.name))
                out.append((view, f))
    if bare:
        owners = _owners_of(views, session, bare)
        for ref in bare:
            candidates = owners.get(ref, [])
            if not candidates:
                raise FeatureNotFound(f"no feature set has a feature {ref!r}", {"feature": ref})
            if len(candidates) > 1:
                raise InvalidRequest(
                    f"feature {ref!r} is in several feature sets {sorted(candidates)}: use set:feature",
                    {"feature": ref, "feature_sets": sorted(candidates)},
                )
            view = views.get(session, candidates[0])
            if (view.name, ref) not in seen:
                seen.add((view.name, ref))
                out.append((view, view.feature(ref)))
    return out


def _owners_of(views: ViewCache, session: Session, names: list[str]) -> dict[str, list[str]]:
    wanted = set(names)
    owners: dict[str, list[str]] = {}
    for set_name in repo.feature_set_names(session):
        view = views.get(session, set_name)
        for f in view.features():
            if f.name in wanted:
                owners.setdefault(f.name, []).append(set_name)
    return owners
