"""Experiments: creation, lifecycle, phases, overrides, and the definition clients evaluate."""

from __future__ import annotations

import uuid
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import lock_key
from mlops_kit.errors import Conflict, NotFound, Unprocessable
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ab_testing.schemas import ExperimentCreate, ExperimentUpdate, jsonable
from ab_testing.tables import Decision, Experiment, Override, Phase, Status

TRANSITIONS = {
    "start": ({Status.DRAFT, Status.PAUSED}, Status.RUNNING),
    "pause": ({Status.RUNNING}, Status.PAUSED),
    "stop": ({Status.RUNNING, Status.PAUSED, Status.DRAFT}, Status.STOPPED),
    "archive": ({Status.STOPPED, Status.DRAFT}, Status.ARCHIVED),
}


def get_experiment(session: Session, ref: str, *, lock: bool = False) -> Experiment:
    query = select(Experiment).where(or_(Experiment.id == ref, Experiment.key == ref))
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    experiment = session.scalar(query) if len(ref) <= 100 else None
    if experiment is None:
        raise NotFound(f"experiment {ref!r} not found", {"experiment": ref}, code="EXPERIMENT_NOT_FOUND")
    return experiment


def control_name(variants: list[dict[str, Any]]) -> str:
    named = [v["name"] for v in variants if v["name"] == "control"]
    return named[0] if named else variants[0]["name"]


def create_experiment(session: Session, body: ExperimentCreate) -> Experiment:
    assert body.key is not None and body.name is not None
    lock_key(session, "ab.experiment", body.key)  # two creations of one key: one wins, one is told
    if session.scalar(select(Experiment.id).where(Experiment.key == body.key)):
        raise Conflict(f"experiment {body.key!r} already exists", {"key": body.key}, code="EXPERIMENT_EXISTS")
    now = utcnow()
    variants = [v.model_dump(mode="json") for v in body.variants]
    config: dict[str, Any] = {}
    if body.bandit:
        config["bandit"] = jsonable(body.bandit)
    if body.canary:
        canary = jsonable(body.canary)
        canary.setdefault("model_name", body.model_name)
        canary["baseline_version"] = canary.get("baseline_version") or variants[0].get("model_version")
        canary["candidate_version"] = canary.get("candidate_version") or variants[1].get("model_version")
        config["canary"] = canary
    experiment = Experiment(
        id=str(uuid.uuid4()),
        key=body.key,
        name=body.name,
        description=body.description,
        hypothesis=body.hypothesis,
        status=Status.DRAFT,
        mode=body.mode,
        model_name=body.model_name or (body.canary.model_name if body.canary else None),
        variants=variants,
        metrics=[m.model_dump(mode="json") for m in body.metrics],
        primary_metric=body.primary_metric,
        guardrail_metrics=list(body.guardrail_metrics),
        minimum_detectable_effect=body.minimum_detectable_effect,
        significance_level=body.significance_level,
        power=body.power,
        coverage=body.coverage,
        seed=body.seed or body.key,
        namespace=jsonable(body.namespace) if body.namespace else None,
        phase=1,
        config=config,
        created_at=now,
        updated_at=now,
    )
    if body.mode == "canary":
        # a canary starts at its first stage, whatever weights were given
        first = experiment.config["canary"]["stages"][0] / 100
        experiment.variants = _weighted(variants, [1 - first, first])
    session.add(experiment)
    session.flush()
    session.add(
        Phase(
            experiment_id=experiment.id,
            number=1,
            seed=experiment.seed,
            variants=experiment.variants,
            coverage=experiment.coverage,
            reason="created",
            started_at=now,
        )
    )
    return experiment


def _weighted(variants: list[dict[str, Any]], weights: list[float]) -> list[dict[str, Any]]:
    return [{**v, "weight": round(w, 6)} for v, w in zip(variants, weights, strict=True)]


def transition(session: Session, experiment: Experiment, action: str) -> Experiment:
    allowed, target = TRANSITIONS[action]
    if experiment.status not in allowed:
        raise Conflict(
            f"cannot {action} an experiment that is {experiment.status}",
            {"status": experiment.status, "action": action},
            code="INVALID_TRANSITION",
        )
    now = utcnow()
    experiment.status = target
    experiment.updated_at = now
    if action == "start" and experiment.started_at is None:
        experiment.started_at = now
    if action == "stop":
        experiment.stopped_at = now
    return experiment


def new_phase(
    session: Session,
    experiment: Experiment,
    variants: list[dict[str, Any]],
    *,
    reassign: bool = False,
    coverage: float | None = None,
    reason: str,
) -> Phase:
    """Close the current phase and open the next with new variants/weights (results are per phase)."""
    now = utcnow()
    current = session.scalar(
        select(Phase).where(Phase.experiment_id == experiment.id, Phase.number == experiment.phase)
    )
    if current is not None:
        current.ended_at = now
    experiment.phase += 1
    if reassign:
        experiment.seed = f"{experiment.key}:phase{experiment.phase}"
    experiment.variants = variants
    if coverage is not None:
        experiment.coverage = coverage
    experiment.updated_at = now
    phase = Phase(
        experiment_id=experiment.id,
        number=experiment.phase,
        seed=experiment.seed,
        variants=variants,
        coverage=experiment.coverage,
        reason=reason,
        started_at=now,
    )
    session.add(phase)
    return phase


def update_experiment(session: Session, experiment: Experiment, body: ExperimentUpdate) -> Experiment:
    if experiment.status == Status.ARCHIVED:
        raise Conflict("an archived experiment cannot change", code="EXPERIMENT_ARCHIVED")
    for field in ("name", "description", "hypothesis"):
        value = getattr(body, field)
        if value is not None:
            setattr(experiment, field, value)
    changes_assignment = body.variants is not None or body.coverage is not None or body.reassign
    if changes_assignment:
        variants = (
            [v.model_dump(mode="json") for v in body.variants] if body.variants else experiment.variants
        )
        if body.variants is not None:
            old = [v["name"] for v in experiment.variants]
            if experiment.mode == "canary" and [v["name"] for v in variants] != old:
                raise Unprocessable("a canary's variants cannot be renamed", code="INVALID_VARIANTS")
        if experiment.status == Status.DRAFT:
            experiment.variants = variants
            if body.coverage is not None:
                experiment.coverage = body.coverage
            phase = session.scalar(
                select(Phase).where(Phase.experiment_id == experiment.id, Phase.number == experiment.phase)
            )
            if phase is not None:
                phase.variants, phase.coverage = variants, experiment.coverage
        else:
            new_phase(
                session,
                experiment,
                variants,
                reassign=body.reassign,
                coverage=body.coverage,
                reason="updated",
            )
    experiment.updated_at = utcnow()
    return experiment


def definition(session: Session, experiment: Experiment) -> dict[str, Any]:
    overrides = dict(
        session.execute(
            select(Override.user_id, Override.variant).where(Override.experiment_id == experiment.id)
        ).all()
    )
    status = experiment.status
    variants = [
        {"name": v["name"], "weight": v["weight"], "model_version": v.get("model_version")}
        for v in experiment.variants
    ]
    rollout = None
    canary = (experiment.config or {}).get("canary") or {}
    if experiment.mode == "canary" and canary.get("status") == "promoted":
        # the candidate won: everyone is served its model version, as the registry alias now says
        rollout = "promoted"
        status = Status.RUNNING
        variants = [{**v, "weight": 1.0 if i == len(variants) - 1 else 0.0} for i, v in enumerate(variants)]
    return {
        "key": experiment.key,
        "id": experiment.id,
        "seed": experiment.seed,
        "status": status,
        "rollout": rollout,
        "phase": experiment.phase,
        "coverage": experiment.coverage,
        "namespace": experiment.namespace,
        "variants": variants,
        "overrides": overrides,
        "hash_version": 2,
    }


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "key": experiment.key,
        "name": experiment.name,
        "description": experiment.description,
        "hypothesis": experiment.hypothesis,
        "status": experiment.status,
        "mode": experiment.mode,
        "model_name": experiment.model_name,
        "variants": experiment.variants,
        "control": control_name(experiment.variants),
        "metrics": experiment.metrics,
        "primary_metric": experiment.primary_metric,
        "guardrail_metrics": experiment.guardrail_metrics,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "significance_level": experiment.significance_level,
        "power": experiment.power,
        "coverage": experiment.coverage,
        "seed": experiment.seed,
        "namespace": experiment.namespace,
        "phase": experiment.phase,
        "bandit": experiment.config.get("bandit"),
        "canary": experiment.config.get("canary"),
        "created_at": experiment.created_at.isoformat(),
        "updated_at": experiment.updated_at.isoformat(),
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "stopped_at": experiment.stopped_at.isoformat() if experiment.stopped_at else None,
    }


def set_override(session: Session, experiment: Experiment, user_id: str, variant: str) -> None:
    names = [v["name"] for v in experiment.variants]
    if variant not in names:
        raise Unprocessable(
            f"experiment {experiment.key!r} has no variant {variant!r}; it has {names}",
            {"variant": variant, "variants": names},
            code="UNKNOWN_VARIANT",
        )
    row = session.scalar(
        select(Override).where(Override.experiment_id == experiment.id, Override.user_id == user_id)
    )
    if row is None:
        session.add(Override(experiment_id=experiment.id, user_id=user_id, variant=variant))
    else:
        row.variant = variant


def record_decision(session: Session, experiment: Experiment, kind: str, details: dict[str, Any]) -> Decision:
    decision = Decision(experiment_id=experiment.id, kind=kind, phase=experiment.phase, details=details)
    session.add(decision)
    return decision
