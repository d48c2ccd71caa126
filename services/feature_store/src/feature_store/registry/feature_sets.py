"""Feature sets and their schema versions.

Adding features makes a new version; removing a feature or changing its type is refused
(409 BREAKING_SCHEMA_CHANGE naming them) unless the caller asks for a breaking version. Every
version stays readable. Any change bumps the feature set's `revision`, which is how replicas
notice their cached view is stale.
"""

from __future__ import annotations

from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import after_commit
from sqlalchemy.orm import Session

from feature_store.errors import (
    AlreadyExists,
    BreakingSchemaChange,
    FeatureSetNotFound,
    InUse,
    InvalidRequest,
)
from feature_store.registry import repository as repo
from feature_store.registry import schemas as s
from feature_store.registry.entities import default_entity, get_entity
from feature_store.registry.repository import lock_entity, lock_feature_set
from feature_store.registry.views import ViewCache
from feature_store.tables import Entity, FeatureSet, FeatureSetVersion
from feature_store.types import from_micros


def _features_json(features: list[s.FeatureIn]) -> list[dict[str, Any]]:
    return [{"name": f.name, "type": f.type, "description": f.description} for f in features]


def get_feature_set(session: Session, name: str, *, lock: bool = False) -> FeatureSet:
    """The feature set `name`; with `lock`, held for this transaction's write (see lock_feature_set)."""
    if lock:
        lock_feature_set(session, name)
    fs = repo.feature_set_by_name(session, name)
    if fs is None:
        raise FeatureSetNotFound(f"feature set {name!r} does not exist", {"feature_set": name})
    return fs


def get_version(session: Session, fs: FeatureSet, version: int | None) -> FeatureSetVersion:
    wanted = fs.latest_version if version is None else version
    row = repo.version(session, fs.id, wanted)
    if row is None:
        raise FeatureSetNotFound(
            f"feature set {fs.name!r} has no version {wanted}",
            {"feature_set": fs.name, "version": wanted, "latest_version": fs.latest_version},
        )
    return row


def feature_set_read(session: Session, fs: FeatureSet, version: int | None = None) -> s.FeatureSetRead:
    entity = repo.entity_by_id(session, fs.entity_id)
    assert entity is not None
    shown = get_version(session, fs, version)
    return _read(fs, entity, shown, repo.version_numbers(session, fs.id))


def feature_set_reads(session: Session, sets: list[FeatureSet]) -> list[s.FeatureSetRead]:
    """The reads of many feature sets (their latest versions) in a fixed number of statements."""
    details = repo.feature_set_details(session, sets)
    return [
        _read(fs, details.entities[fs.entity_id], details.latest[fs.id], details.numbers[fs.id])
        for fs in sets
    ]


def _read(fs: FeatureSet, entity: Entity, shown: FeatureSetVersion, versions: list[int]) -> s.FeatureSetRead:
    return s.FeatureSetRead(
        name=fs.name,
        entity=entity.name,
        join_keys=list(entity.join_keys),
        description=fs.description,
        owner=fs.owner,
        tags=dict(fs.tags or {}),
        ttl_seconds=fs.ttl_seconds,
        version=shown.version,
        latest_version=fs.latest_version,
        features=[s.FeatureOut(**f) for f in shown.features],
        versions=versions,
        materialized_until=from_micros(fs.materialized_until_us) if fs.materialized_until_us else None,
        created_at=fs.created_at,
        updated_at=fs.updated_at,
    )


def _invalidate(views: ViewCache, session: Session, name: str) -> None:
    after_commit(session, lambda: views.invalidate(name))
    views.invalidate(name)


def create_feature_set(views: ViewCache, session: Session, body: s.FeatureSetCreate) -> FeatureSet:
    lock_feature_set(session, body.name)
    if repo.feature_set_exists(session, body.name):
        raise AlreadyExists(
            f"feature set {body.name!r} already exists: add a version with "
            f"POST /api/feature-sets/{body.name}/versions or apply with PUT",
            {"feature_set": body.name},
        )
    if body.entity:
        lock_entity(session, body.entity)  # not deleted under the new set
    entity = get_entity(session, body.entity) if body.entity else default_entity(session)
    _check_no_key_clash(entity, body.features)
    now = utcnow()
    fs = FeatureSet(
        name=body.name,
        entity_id=entity.id,
        description=body.description,
        owner=body.owner,
        tags=body.tags,
        ttl_seconds=body.ttl_seconds,
        latest_version=1,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    repo.add(session, fs)
    repo.add(
        session,
        FeatureSetVersion(
            feature_set_id=fs.id,
            version=1,
            features=_features_json(body.features),
            breaking=False,
            change="created",
            created_at=now,
        ),
    )
    _invalidate(views, session, fs.name)
    return fs


def _check_no_key_clash(entity: Entity, features: list[s.FeatureIn]) -> None:
    clash = sorted(set(entity.join_keys).intersection(f.name for f in features))
    if clash:
        raise InvalidRequest(
            f"features {clash} have the names of join keys of entity {entity.name!r}",
            {"entity": entity.name, "features": clash},
        )


def schema_diff(old: list[dict[str, Any]], new: list[s.FeatureIn]) -> dict[str, list[Any]]:
    before = {f["name"]: f["type"] for f in old}
    after = {f.name: f.type for f in new}
    return {
        "added": [n for n in after if n not in before],
        "removed": [n for n in before if n not in after],
        "retyped": [
            {"feature": n, "from": before[n], "to": after[n]}
            for n in after
            if n in before and before[n] != after[n]
        ],
        "described": [
            f.name
            for f in new
            if f.name in before
            and next(o for o in old if o["name"] == f.name).get("description", "") != f.description
        ],
    }


def add_version(
    views: ViewCache,
    session: Session,
    fs: FeatureSet,
    features: list[s.FeatureIn],
    *,
    breaking: bool,
    change: str = "",
    unchanged_ok: bool = False,
) -> FeatureSetVersion | None:
    """A new schema version, or None when nothing changed and `unchanged_ok`."""
    latest = get_version(session, fs, None)
    diff = schema_diff(latest.features, features)
    if not (diff["added"] or diff["removed"] or diff["retyped"] or diff["described"]):
        if unchanged_ok:
            return None
        raise AlreadyExists(
            f"feature set {fs.name!r} version {latest.version} already has exactly these features",
            {"feature_set": fs.name, "version": latest.version},
        )
    if (diff["removed"] or diff["retyped"]) and not breaking:
        raise BreakingSchemaChange(
            f"feature set {fs.name!r}: removing {diff['removed']} or changing the type of "
            f"{[r['feature'] for r in diff['retyped']]} breaks readers; send breaking: true to make a "
            "breaking version (old versions stay readable)",
            {"feature_set": fs.name, "removed": diff["removed"], "retyped": diff["retyped"]},
        )
    entity = repo.entity_by_id(session, fs.entity_id)
    assert entity is not None
    _check_no_key_clash(entity, features)
    now = utcnow()
    version = FeatureSetVersion(
        feature_set_id=fs.id,
        version=fs.latest_version + 1,
        features=_features_json(features),
        breaking=bool(diff["removed"] or diff["retyped"]),
        change=change or _describe(diff),
        created_at=now,
    )
    fs.latest_version = version.version
    fs.revision += 1
    fs.updated_at = now
    repo.add(session, version)
    _invalidate(views, session, fs.name)
    return version


def _describe(diff: dict[str, list[Any]]) -> str:
    parts = []
    if diff["added"]:
        parts.append(f"added {', '.join(diff['added'])}")
    if diff["removed"]:
        parts.append(f"removed {', '.join(diff['removed'])}")
    for r in diff["retyped"]:
        parts.append(f"{r['feature']}: {r['from']} -> {r['to']}")
    if diff["described"]:
        parts.append(f"described {', '.join(diff['described'])}")
    return "; ".join(parts)


def apply_feature_set(
    views: ViewCache, session: Session, name: str, body: s.FeatureSetApply
) -> tuple[FeatureSet, bool]:
    """(feature set, created?)."""
    lock_feature_set(session, name)
    fs = repo.feature_set_by_name(session, name)
    if fs is None:
        create = s.FeatureSetCreate(
            name=name,
            entity=body.entity,
            features=body.features,
            description=body.description or "",
            owner=body.owner,
            tags=body.tags or {},
            ttl_seconds=body.ttl_seconds,
        )
        return create_feature_set(views, session, create), True
    if body.entity is not None:
        entity = repo.entity_by_id(session, fs.entity_id)
        if entity is not None and entity.name != body.entity:
            raise InvalidRequest(
                f"feature set {name!r} belongs to entity {entity.name!r}, not {body.entity!r}",
                {"feature_set": name, "entity": entity.name},
            )
    add_version(views, session, fs, body.features, breaking=body.breaking, unchanged_ok=True)
    update = s.FeatureSetUpdate(
        description=body.description,
        owner=body.owner,
        tags=body.tags,
        ttl_seconds=None if body.ttl_seconds is None else body.ttl_seconds,
    )
    update_feature_set(views, session, name, update, fs=fs)
    return fs, False


def update_feature_set(
    views: ViewCache, session: Session, name: str, body: s.FeatureSetUpdate, fs: FeatureSet | None = None
) -> FeatureSet:
    fs = fs or get_feature_set(session, name, lock=True)
    changed = False
    for field in ("description", "owner", "tags"):
        value = getattr(body, field)
        if value is not None and getattr(fs, field) != value:
            setattr(fs, field, value)
            changed = True
    if body.ttl_seconds is not None and (body.ttl_seconds or None) != fs.ttl_seconds:
        fs.ttl_seconds = body.ttl_seconds or None
        changed = True
    if changed:
        fs.revision += 1
        fs.updated_at = utcnow()
        repo.flush(session)
        _invalidate(views, session, fs.name)
    return fs


def list_feature_sets(
    session: Session,
    *,
    entity: str | None,
    owner: str | None,
    tags: list[str],
    name_prefix: str | None,
    limit: int,
    offset: int,
) -> tuple[list[FeatureSet], int]:
    found = repo.matching_feature_sets(session, entity=entity, owner=owner, name_prefix=name_prefix)
    if tags:
        found = [fs for fs in found if all(_has_tag(fs.tags or {}, t) for t in tags)]
    return found[offset : offset + limit], len(found)


def _has_tag(tags: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    if sep:
        return tags.get(key) == value
    return key in tags or key in tags.values()


def delete_feature_set(views: ViewCache, session: Session, name: str, *, force: bool) -> int:
    """Removes the set, its versions, offline rows, statistics and jobs; returns its id (the
    caller clears the online store after commit)."""
    fs = get_feature_set(session, name, lock=True)
    users = [svc for svc in _services_using(session, name)]
    if users and not force:
        raise InUse(
            f"feature set {name!r} is used by feature services {users}: delete them or pass ?force=true",
            {"feature_set": name, "feature_services": users},
        )
    repo.delete_feature_set(session, fs)
    _invalidate(views, session, name)
    return fs.id


def _services_using(session: Session, set_name: str) -> list[str]:
    names: set[str] = set()
    for svc in repo.all_services(session):
        if any(ref.get("feature_set") == set_name for ref in svc.features):
            names.add(svc.name)
    return sorted(names)
