"""Deployment rules: one name each, a target that is an alias, a stage or a pinned version."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from mlops_kit.audit import utcnow
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from model_serving.deployments import repository as repo
from model_serving.deployments.schemas import (
    DeploymentCreate,
    DeploymentRead,
    DeploymentStatus,
    DeploymentUpdate,
    LegacyDeploy,
    LoadedVersion,
    Replicas,
    Shadow,
)
from model_serving.errors import DeploymentExists, DeploymentNotFound
from model_serving.runtime.state import Live, Spec
from model_serving.tables import Deployment

REPLICA = socket.gethostname()


def _target(body: DeploymentCreate | DeploymentUpdate) -> dict[str, Any]:
    stage = body.stage.capitalize() if body.stage else None
    alias = body.alias if (body.alias or body.version or stage) else "production"
    return {"alias": alias, "version": body.version, "stage": stage}


def create(session: Session, body: DeploymentCreate, actor: str) -> Deployment:
    if repo.get(session, body.name) is not None:
        raise DeploymentExists(f"deployment {body.name!r} exists", {"name": body.name})
    now = utcnow()
    values = {
        "name": body.name,
        "model": body.model,
        **_target(body),
        "feature_service": body.feature_service,
        "experiment": body.experiment,
        "monitoring": body.monitoring,
        "shadow_alias": body.shadow.alias if body.shadow else None,
        "shadow_version": body.shadow.version if body.shadow else None,
        "min_replicas": body.replicas.min,
        "max_replicas": body.replicas.max,
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
    }
    try:
        with session.begin_nested():
            return repo.add(session, values)
    except IntegrityError:  # another replica created it between the check and the insert
        raise DeploymentExists(f"deployment {body.name!r} exists", {"name": body.name}) from None


def load(session: Session, name: str, *, for_update: bool = False) -> Deployment:
    row = repo.get_for_update(session, name) if for_update else repo.get(session, name)
    if row is None:
        raise DeploymentNotFound(f"deployment {name!r} does not exist", {"name": name})
    return row


def update(session: Session, row: Deployment, body: DeploymentUpdate) -> Deployment:
    given = body.model_fields_set
    if given & {"alias", "version", "stage"}:
        for key, value in _target(body).items():
            setattr(row, key, value)
    for key in ("feature_service", "experiment", "monitoring"):
        if key in given and (key != "monitoring" or body.monitoring is not None):
            setattr(row, key, getattr(body, key))
    if "shadow" in given:
        row.shadow_alias = body.shadow.alias if body.shadow else None
        row.shadow_version = body.shadow.version if body.shadow else None
    if body.replicas is not None:
        row.min_replicas, row.max_replicas = body.replicas.min, body.replicas.max
    row.updated_at = utcnow()
    session.flush()
    return row


def delete(session: Session, name: str) -> None:
    if not repo.remove(session, name):
        raise DeploymentNotFound(f"deployment {name!r} does not exist", {"name": name})


def from_legacy(body: LegacyDeploy) -> DeploymentCreate:
    """The orchestration document's body: a pinned version (or the production alias), named after
    the model and its environment."""
    name = body.model_name if not body.environment else f"{body.model_name}-{body.environment}"
    low = body.min_instances or body.instance_count or 1
    high = max(low, body.max_instances or body.instance_count or low)
    return DeploymentCreate(
        name=name[:64],
        model=body.model_name,
        version=body.model_version,
        replicas=Replicas(min=low, max=high),
    )


def spec(row: Deployment) -> Spec:
    return Spec(
        name=row.name,
        model=row.model,
        alias=row.alias,
        version=row.version,
        stage=row.stage,
        feature_service=row.feature_service,
        experiment=row.experiment,
        monitoring=row.monitoring,
        shadow_alias=row.shadow_alias,
        shadow_version=row.shadow_version,
    )


def specs(rows: Sequence[Deployment]) -> list[Spec]:
    return [spec(r) for r in rows]


def status(live: Live | None) -> DeploymentStatus:
    if live is None:
        return DeploymentStatus(
            state="PENDING",
            target_version=None,
            loaded=None,
            last_error=None,
            failed_version=None,
            variants={},
            shadow_version=None,
            replica=REPLICA,
        )
    current = live.current
    loaded = None
    if current is not None:
        loaded = LoadedVersion(
            version=current.version,
            loaded_at=current.loaded_at,
            load_seconds=round(current.load_seconds, 4),
            flavor=current.loaded.flavor,
        )
    variants: dict[str, str] = {}
    if live.routing is not None:  # what routes requests now (every variant's version loaded)
        for v in live.routing.experiment.definition.get("variants") or []:
            version = v.get("model_version") or (current.version if current else None)
            if version:
                variants[str(v.get("name"))] = str(version)
    wanted = live.wanted_experiment
    waiting: list[str] = []
    if wanted is not None:
        versions = [v.get("model_version") for v in wanted.definition.get("variants") or []]
        waiting = sorted({str(v) for v in versions if v and str(v) not in live.variants})
    return DeploymentStatus(
        state=live.state,
        target_version=live.target_version,
        loaded=loaded,
        last_error=live.last_error,
        failed_version=live.failed_version,
        variants=variants,
        experiment=wanted.key if wanted is not None else None,
        experiment_waiting_for=waiting,
        shadow_version=live.shadow.version if live.shadow else None,
        replica=REPLICA,
    )


def read(row: Deployment, live: Live | None) -> DeploymentRead:
    shadow = None
    if row.shadow_alias or row.shadow_version:
        shadow = Shadow(alias=row.shadow_alias, version=row.shadow_version)
    return DeploymentRead(
        name=row.name,
        model=row.model,
        alias=row.alias,
        version=row.version,
        stage=row.stage,
        feature_service=row.feature_service,
        experiment=row.experiment,
        monitoring=row.monitoring,
        shadow=shadow,
        replicas=Replicas(min=row.min_replicas, max=row.max_replicas),
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        status=status(live),
    )
