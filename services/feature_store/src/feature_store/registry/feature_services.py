"""Feature services: named, versioned lists of features pinned to feature set versions."""

from __future__ import annotations

from mlops_kit.audit import utcnow
from sqlalchemy.orm import Session

from feature_store.errors import FeatureServiceNotFound
from feature_store.registry import repository as repo
from feature_store.registry import schemas as s
from feature_store.registry.repository import lock_service
from feature_store.registry.views import ViewCache, resolve_refs
from feature_store.tables import FeatureService


def service_read(svc: FeatureService) -> s.FeatureServiceRead:
    return s.FeatureServiceRead(
        name=svc.name,
        version=svc.version,
        features=[s.FeatureRef(**ref) for ref in svc.features],
        description=svc.description,
        tags=dict(svc.tags or {}),
        created_at=svc.created_at,
    )


def get_service(session: Session, name: str, version: int | None = None) -> FeatureService:
    svc = repo.service(session, name, version)
    if svc is None:
        what = f"feature service {name!r}" + (f" version {version}" if version is not None else "")
        raise FeatureServiceNotFound(f"{what} does not exist", {"feature_service": name, "version": version})
    return svc


def create_service(
    views: ViewCache, session: Session, body: s.FeatureServiceCreate
) -> tuple[FeatureService, bool]:
    """A new version when the resolved features differ from the latest; (service, created?)."""
    lock_service(session, body.name)
    resolved = resolve_refs(views, session, body.features)
    refs = [
        {"feature_set": view.name, "feature": f.name, "version": view.latest_version, "type": f.type}
        for view, f in resolved
    ]
    latest = repo.service(session, body.name)
    if latest is not None and latest.features == refs:
        changed = False
        if body.description and body.description != latest.description:
            latest.description, changed = body.description, True
        if body.tags and body.tags != latest.tags:
            latest.tags, changed = body.tags, True
        if changed:
            repo.flush(session)
        return latest, False
    svc = FeatureService(
        name=body.name,
        version=(latest.version + 1) if latest else 1,
        features=refs,
        description=body.description or (latest.description if latest else ""),
        tags=body.tags or (dict(latest.tags) if latest else {}),
        created_at=utcnow(),
    )
    repo.add(session, svc)
    return svc, True


def list_services(session: Session, limit: int, offset: int) -> tuple[list[FeatureService], int]:
    return repo.latest_services(session, limit, offset)


def service_versions(session: Session, name: str) -> list[FeatureService]:
    rows = repo.service_versions(session, name)
    if not rows:
        raise FeatureServiceNotFound(f"feature service {name!r} does not exist", {"feature_service": name})
    return rows


def delete_service(session: Session, name: str) -> None:
    lock_service(session, name)
    service_versions(session, name)
    repo.delete_service(session, name)
