"""Entities: what feature sets are keyed by (their join keys), and the default one."""

from __future__ import annotations

from mlops_kit.audit import utcnow
from sqlalchemy.orm import Session

from feature_store.errors import AlreadyExists, EntityNotFound, InUse
from feature_store.registry import repository as repo
from feature_store.registry import schemas as s
from feature_store.registry.repository import lock_entity
from feature_store.tables import Entity

DEFAULT_ENTITY = "default"
DEFAULT_JOIN_KEY = "entity_id"


def entity_read(entity: Entity) -> s.EntityRead:
    return s.EntityRead(
        name=entity.name,
        join_keys=list(entity.join_keys),
        value_type=entity.value_type,
        description=entity.description,
        tags=dict(entity.tags or {}),
        created_at=entity.created_at,
        updated_at=entity.updated_at,
    )


def get_entity(session: Session, name: str) -> Entity:
    entity = repo.entity_by_name(session, name)
    if entity is None:
        raise EntityNotFound(f"entity {name!r} does not exist", {"entity": name})
    return entity


def create_entity(session: Session, body: s.EntityCreate) -> Entity:
    lock_entity(session, body.name)
    if repo.entity_exists(session, body.name):
        raise AlreadyExists(f"entity {body.name!r} already exists", {"entity": body.name})
    now = utcnow()
    entity = Entity(
        name=body.name,
        join_keys=list(body.join_keys or [body.name]),
        value_type=body.value_type,
        description=body.description,
        tags=body.tags,
        created_at=now,
        updated_at=now,
    )
    repo.add(session, entity)
    return entity


def default_entity(session: Session) -> Entity:
    lock_entity(session, DEFAULT_ENTITY)
    entity = repo.entity_by_name(session, DEFAULT_ENTITY)
    if entity is not None:
        return entity
    body = s.EntityCreate(
        name=DEFAULT_ENTITY,
        join_keys=[DEFAULT_JOIN_KEY],
        description="entity of feature sets created without one",
    )
    return create_entity(session, body)


def list_entities(session: Session, limit: int, offset: int) -> tuple[list[Entity], int]:
    return repo.entity_page(session, limit, offset)


def update_entity(session: Session, name: str, body: s.EntityUpdate) -> Entity:
    lock_entity(session, name)
    entity = get_entity(session, name)
    if body.description is not None:
        entity.description = body.description
    if body.tags is not None:
        entity.tags = body.tags
    entity.updated_at = utcnow()
    return entity


def delete_entity(session: Session, name: str) -> None:
    lock_entity(session, name)
    entity = get_entity(session, name)
    users = repo.feature_sets_of_entity(session, entity.id)
    if users:
        raise InUse(
            f"entity {name!r} is used by feature sets {sorted(users)}: delete them first",
            {"entity": name, "feature_sets": sorted(users)},
        )
    repo.delete_entity(session, entity)
