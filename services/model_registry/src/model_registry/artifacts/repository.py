"""Every SQL statement about artifacts. Flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from model_registry.tables import Artifact


def list_artifacts(session: Session, version_id: int) -> list[Artifact]:
    return list(
        session.scalars(select(Artifact).where(Artifact.version_id == version_id).order_by(Artifact.path))
    )


def by_path(session: Session, version_id: int) -> dict[str, Artifact]:
    return {a.path: a for a in session.scalars(select(Artifact).where(Artifact.version_id == version_id))}


def add_artifact(session: Session, artifact: Artifact) -> Artifact:
    session.add(artifact)
    return artifact
