"""Every SQL statement about artifacts. Flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from model_registry.tables import Artifact, ModelVersion


def list_artifacts(session: Session, version_id: int) -> list[Artifact]:
    return list(
        session.scalars(select(Artifact).where(Artifact.version_id == version_id).order_by(Artifact.path))
    )


def by_path(session: Session, version_id: int) -> dict[str, Artifact]:
    return {a.path: a for a in session.scalars(select(Artifact).where(Artifact.version_id == version_id))}


def add_artifact(session: Session, artifact: Artifact) -> Artifact:
    session.add(artifact)
    return artifact


def reload_version(session: Session, version: ModelVersion) -> bool:
    """Re-read the version's row as committed by now; False when it has been deleted."""
    try:
        session.refresh(version)
    except InvalidRequestError:
        return False
    return True
