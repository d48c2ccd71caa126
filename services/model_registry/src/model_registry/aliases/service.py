"""Aliases (any name → one version) and MLflow-style stages, with a history that can be undone."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import orjson
from mlops_kit.audit import utcnow
from mlops_kit.errors import Unprocessable
from sqlalchemy.orm import Session

from model_registry.aliases import repository as repo
from model_registry.aliases.schemas import MAX_ROWS
from model_registry.errors import AliasNotFound, NothingToRollBack
from model_registry.models import repository as model_repo
from model_registry.tables import Alias, ModelVersion, RegisteredModel, Transition
from model_registry.types import iso_utc


class AliasStateTooLarge(Unprocessable):
    code = "ALIAS_STATE_TOO_LARGE"


def _event() -> str:
    return uuid.uuid4().hex


def resolve(session: Session, model: RegisteredModel, alias: str) -> ModelVersion:
    version = repo.resolve(session, model.id, alias)
    if version is None:
        raise AliasNotFound(
            f"model {model.name!r} has no alias {alias!r}", {"name": model.name, "alias": alias}
        )
    return version


def list_aliases(session: Session, model: RegisteredModel) -> list[tuple[Alias, str]]:
    """(alias, version it points at) of the model, by alias."""
    return repo.list_aliases(session, model.id)


def history(
    session: Session,
    model: RegisteredModel,
    kind: str | None,
    name: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Transition], int]:
    """A page of the model's alias and stage moves, newest first, and their total."""
    return repo.history(session, model.id, kind, name, limit, offset)


def set_alias(
    session: Session,
    model: RegisteredModel,
    alias: str,
    version: ModelVersion,
    actor: str,
    comment: str | None = None,
    action: str | None = None,
) -> Alias:
    current = repo.get_alias(session, model.id, alias)
    previous = None
    now = utcnow()
    if current is None:
        current = repo.add_alias(
            session,
            Alias(model_id=model.id, alias=alias, version_id=version.id, updated_at=now, updated_by=actor),
        )
    else:
        previous = model_repo.get_versions_by_id(session, [current.version_id])[current.version_id]
        current.version_id, current.updated_at, current.updated_by = version.id, now, actor
    repo.add_transitions(
        session,
        [
            Transition(
                event_id=_event(),
                model_id=model.id,
                kind="alias",
                name=alias,
                version=version.version,
                from_value=previous.version if previous else None,
                to_value=version.version,
                action=action or ("set" if previous is None else "move"),
                actor=actor,
                comment=comment,
                at=now,
            )
        ],
    )
    return current


def delete_alias(
    session: Session, model: RegisteredModel, alias: str, actor: str, action: str = "delete"
) -> None:
    current = repo.get_alias(session, model.id, alias)
    if current is None:
        raise AliasNotFound(
            f"model {model.name!r} has no alias {alias!r}", {"name": model.name, "alias": alias}
        )
    previous = model_repo.get_versions_by_id(session, [current.version_id])[current.version_id]
    repo.delete_alias(session, current)
    repo.add_transitions(
        session,
        [
            Transition(
                event_id=_event(),
                model_id=model.id,
                kind="alias",
                name=alias,
                version=previous.version,
                from_value=previous.version,
                to_value=None,
                action=action,
                actor=actor,
                at=utcnow(),
            )
        ],
    )


def rollback_alias(session: Session, model: RegisteredModel, alias: str, actor: str) -> Alias | None:
    """Point the alias back at its previous target (or remove it if it had none)."""
    last = repo.last_transition(session, model.id, "alias", alias)
    if last is None:
        raise NothingToRollBack(f"alias {alias!r} of {model.name!r} has no history")
    if last.from_value is None:
        delete_alias(session, model, alias, actor, action="rollback")
        return None
    target = model_repo.get_version(session, model.id, last.from_value)
    if target is None:
        raise NothingToRollBack(f"the previous target {last.from_value!r} of alias {alias!r} was deleted")
    return set_alias(session, model, alias, target, actor, action="rollback")


def transition_stage(
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    stage: str,
    archive_existing: bool,
    actor: str,
    comment: str | None = None,
) -> None:
    event_id, now = _event(), utcnow()
    moves = [(version, stage)]
    if archive_existing and stage in ("Staging", "Production"):
        moves += [
            (v, "Archived") for v in repo.versions_in_stage(session, model.id, stage) if v.id != version.id
        ]
    rows = []
    for target, new_stage in moves:
        rows.append(
            Transition(
                event_id=event_id,
                model_id=model.id,
                kind="stage",
                name=new_stage,
                version=target.version,
                from_value=target.stage,
                to_value=new_stage,
                action="transition" if target is version else "archive_existing",
                actor=actor,
                comment=comment,
                at=now,
            )
        )
        target.stage, target.updated_at = new_stage, now
    repo.add_transitions(session, rows)


def rollback_stage(session: Session, model: RegisteredModel, stage: str, actor: str) -> list[str]:
    """Undo the last transition into `stage`, including the versions it archived."""
    last = repo.last_transition(session, model.id, "stage", stage, action="transition")
    if last is None:
        raise NothingToRollBack(f"no transition into stage {stage!r} of {model.name!r} to undo")
    event_id, now, rows, touched = _event(), utcnow(), [], []
    for entry in repo.event(session, last.event_id):
        version = model_repo.get_version(session, model.id, entry.version or "")
        if version is None or version.stage != entry.to_value:
            continue
        rows.append(
            Transition(
                event_id=event_id,
                model_id=model.id,
                kind="stage",
                name=entry.from_value or "None",
                version=version.version,
                from_value=version.stage,
                to_value=entry.from_value,
                action="rollback",
                actor=actor,
                at=now,
            )
        )
        version.stage, version.updated_at = entry.from_value or "None", now
        touched.append(version.version)
    if not rows:
        raise NothingToRollBack("the versions of that transition have moved on since")
    repo.add_transitions(session, rows)
    return touched


def alias_state(session: Session, names: Sequence[str]) -> tuple[bytes, str]:
    """The `AliasStateRead` body of the named models (all when none are named) and its strong ETag.

    Rows are sorted here, by code point, so the same state is the same bytes (and ETag) on every
    backend; a state over MAX_ROWS rows is refused rather than cut, since a cut one would hide moves."""
    aliases = repo.alias_targets(session, names, MAX_ROWS + 1)
    stages = repo.staged_versions(session, names, MAX_ROWS + 1)
    if len(aliases) + len(stages) > MAX_ROWS:
        raise AliasStateTooLarge(
            f"the alias state has more than {MAX_ROWS:,} aliases and stages; name the models wanted",
            {"max_rows": MAX_ROWS},
        )
    body = orjson.dumps(
        {
            "aliases": [
                {"name": n, "alias": a, "version": v, "updated_at": iso_utc(at)}
                for n, a, v, at in sorted(aliases, key=lambda row: (row[0], row[1]))
            ],
            "stages": [
                {"name": n, "stage": s, "version": v}
                for n, s, v, _ in sorted(stages, key=lambda row: (row[0], row[1], row[3]))
            ],
        }
    )
    return body, f'"{hashlib.sha256(body).hexdigest()}"'
