"""Every SQL statement about entities, feature sets (with their versions) and feature services.
Flushes, never commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlops_kit.db import lock_key
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from feature_store.tables import (
    Entity,
    FeatureService,
    FeatureSet,
    FeatureSetVersion,
    FeatureStatistics,
    MaterializationJob,
    OfflineRow,
)


# Every write to a named object holds its lock (kit lock_key) from before its first read to the
# commit, so replicas never both act on one stale view: two registrations of one new schema
# version make one version, two creations of one name one object.
def lock_entity(session: Session, name: str) -> None:
    lock_key(session, "features.entity", name)


def lock_feature_set(session: Session, name: str) -> None:
    lock_key(session, "features.feature_set", name)


def lock_service(session: Session, name: str) -> None:
    lock_key(session, "features.service", name)


def add(session: Session, row: Entity | FeatureSet | FeatureSetVersion | FeatureService) -> None:
    session.add(row)
    session.flush()


def flush(session: Session) -> None:
    session.flush()


# entities ------------------------------------------------------------------------------------


def entity_by_name(session: Session, name: str) -> Entity | None:
    return session.scalar(select(Entity).where(Entity.name == name))


def entity_exists(session: Session, name: str) -> bool:
    return session.scalar(select(Entity.id).where(Entity.name == name)) is not None


def entity_by_id(session: Session, entity_id: int) -> Entity | None:
    return session.get(Entity, entity_id)


def entity_page(session: Session, limit: int, offset: int) -> tuple[list[Entity], int]:
    total = session.scalar(select(func.count()).select_from(Entity)) or 0
    rows = session.scalars(select(Entity).order_by(Entity.name).limit(limit).offset(offset))
    return list(rows), total


def feature_sets_of_entity(session: Session, entity_id: int) -> list[str]:
    return list(session.scalars(select(FeatureSet.name).where(FeatureSet.entity_id == entity_id)))


def delete_entity(session: Session, entity: Entity) -> None:
    session.delete(entity)


# feature sets --------------------------------------------------------------------------------


def feature_set_by_name(session: Session, name: str) -> FeatureSet | None:
    return session.scalar(select(FeatureSet).where(FeatureSet.name == name))


def feature_set_exists(session: Session, name: str) -> bool:
    return session.scalar(select(FeatureSet.id).where(FeatureSet.name == name)) is not None


def feature_set_names(session: Session) -> list[str]:
    return list(session.scalars(select(FeatureSet.name)))


def feature_set_revision(session: Session, name: str) -> int | None:
    return session.scalar(select(FeatureSet.revision).where(FeatureSet.name == name))


def feature_set_with_entity(session: Session, name: str) -> tuple[FeatureSet, Entity] | None:
    row = session.execute(
        select(FeatureSet, Entity)
        .join(Entity, Entity.id == FeatureSet.entity_id)
        .where(FeatureSet.name == name)
    ).first()
    return None if row is None else (row[0], row[1])


def version(session: Session, feature_set_id: int, number: int) -> FeatureSetVersion | None:
    return session.get(FeatureSetVersion, (feature_set_id, number))


def versions(session: Session, feature_set_id: int) -> list[FeatureSetVersion]:
    query = select(FeatureSetVersion).where(FeatureSetVersion.feature_set_id == feature_set_id)
    return list(session.scalars(query))


def version_numbers(session: Session, feature_set_id: int) -> list[int]:
    return list(
        session.scalars(
            select(FeatureSetVersion.version)
            .where(FeatureSetVersion.feature_set_id == feature_set_id)
            .order_by(FeatureSetVersion.version)
        )
    )


def matching_feature_sets(
    session: Session, *, entity: str | None, owner: str | None, name_prefix: str | None
) -> list[FeatureSet]:
    """By name; the tags filter is the caller's (tags match keys or values)."""
    query = select(FeatureSet)
    if entity:
        query = query.join(Entity, Entity.id == FeatureSet.entity_id).where(Entity.name == entity)
    if owner:
        query = query.where(FeatureSet.owner == owner)
    if name_prefix:
        escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(FeatureSet.name.like(f"{escaped}%", escape="\\"))
    return list(session.scalars(query.order_by(FeatureSet.name)))


@dataclass(frozen=True)
class FeatureSetDetails:
    """What a feature set's read shows besides its row, loaded for many sets at once."""

    entities: dict[int, Entity]  # by entity id
    latest: dict[int, FeatureSetVersion]  # by feature set id
    numbers: dict[int, list[int]]  # feature set id -> its version numbers, ascending


def feature_set_details(session: Session, sets: Sequence[FeatureSet]) -> FeatureSetDetails:
    """Entities, latest versions and version numbers of `sets` in three statements, whatever their number."""
    if not sets:
        return FeatureSetDetails({}, {}, {})
    ids = [fs.id for fs in sets]
    entities = {
        e.id: e for e in session.scalars(select(Entity).where(Entity.id.in_({fs.entity_id for fs in sets})))
    }
    latest = {
        v.feature_set_id: v
        for v in session.scalars(
            select(FeatureSetVersion)
            .join(
                FeatureSet,
                (FeatureSet.id == FeatureSetVersion.feature_set_id)
                & (FeatureSet.latest_version == FeatureSetVersion.version),
            )
            .where(FeatureSet.id.in_(ids))
        )
    }
    numbers: dict[int, list[int]] = defaultdict(list)
    for set_id, number in session.execute(
        select(FeatureSetVersion.feature_set_id, FeatureSetVersion.version)
        .where(FeatureSetVersion.feature_set_id.in_(ids))
        .order_by(FeatureSetVersion.feature_set_id, FeatureSetVersion.version)
    ):
        numbers[set_id].append(number)
    return FeatureSetDetails(entities, latest, dict(numbers))


def delete_feature_set(session: Session, fs: FeatureSet) -> None:
    """The set with its versions, offline rows, statistics and jobs."""
    for table in (OfflineRow, FeatureStatistics, MaterializationJob, FeatureSetVersion):
        session.execute(delete(table).where(table.feature_set_id == fs.id))
    session.delete(fs)
    session.flush()


# feature services ----------------------------------------------------------------------------


def all_services(session: Session) -> list[FeatureService]:
    return list(session.scalars(select(FeatureService)))


def service(session: Session, name: str, version: int | None = None) -> FeatureService | None:
    """Version `version` of the service, or its latest."""
    query = select(FeatureService).where(FeatureService.name == name)
    if version is not None:
        query = query.where(FeatureService.version == version)
    return session.scalar(query.order_by(FeatureService.version.desc()).limit(1))


def service_refs(session: Session, name: str, version: int | None) -> list[dict[str, Any]] | None:
    """The feature references a service version pins (its latest without `version`)."""
    query = select(FeatureService.features).where(FeatureService.name == name)
    if version is not None:
        query = query.where(FeatureService.version == version)
    return session.scalar(query.order_by(FeatureService.version.desc()).limit(1))


def latest_services(session: Session, limit: int, offset: int) -> tuple[list[FeatureService], int]:
    latest = (
        select(FeatureService.name, func.max(FeatureService.version).label("version"))
        .group_by(FeatureService.name)
        .subquery()
    )
    query = select(FeatureService).join(
        latest, (latest.c.name == FeatureService.name) & (latest.c.version == FeatureService.version)
    )
    total = session.scalar(select(func.count()).select_from(latest)) or 0
    rows = session.scalars(query.order_by(FeatureService.name).limit(limit).offset(offset))
    return list(rows), total


def service_versions(session: Session, name: str) -> list[FeatureService]:
    query = select(FeatureService).where(FeatureService.name == name).order_by(FeatureService.version)
    return list(session.scalars(query))


def delete_service(session: Session, name: str) -> None:
    session.execute(delete(FeatureService).where(FeatureService.name == name))
