"""Experiments: creation, lifecycle, phases, overrides, and the definition clients evaluate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import after_commit
from sqlalchemy.orm import Session

from ab_testing.errors import (
    ExperimentArchived,
    ExperimentExists,
    ExperimentNotFound,
    InvalidTransition,
    InvalidVariants,
    UnknownVariant,
)
from ab_testing.experiments import repository
from ab_testing.schemas import (
    REF_MAX,  # longer references name no experiment: not looked up
    ExperimentCreate,
    ExperimentUpdate,
    jsonable,
)
from ab_testing.tables import Decision, Experiment, Override, Phase, Status

TRANSITIONS = {
    "start": ({Status.DRAFT, Status.PAUSED}, Status.RUNNING),
    "pause": ({Status.RUNNING}, Status.PAUSED),
    "stop": ({Status.RUNNING, Status.PAUSED, Status.DRAFT}, Status.STOPPED),
    "archive": ({Status.STOPPED, Status.DRAFT}, Status.ARCHIVED),
}


def get_experiment(session: Session, ref: str, *, lock: bool = False) -> Experiment:
    experiment = repository.find(session, ref, lock=lock) if len(ref) <= REF_MAX else None
    if experiment is None:
        raise ExperimentNotFound(f"experiment {ref!r} not found", {"experiment": ref})
    return experiment


def invalidate_on_commit(session: Session, invalidate: Callable[..., None], experiment: Experiment) -> None:
    """Drop the experiment's cached routing definition once the change is committed."""
    refs = (experiment.id, experiment.key)
    after_commit(session, lambda: invalidate(*refs))


def control_name(variants: list[dict[str, Any]]) -> str:
    named: list[str] = [v["name"] for v in variants if v["name"] == "control"]
    first: str = variants[0]["name"]
    return named[0] if named else first


def variant_names(experiment: Experiment) -> list[str]:
    return [v["name"] for v in experiment.variants]


def check_variant(experiment: Experiment, variant: str) -> None:
    names = variant_names(experiment)
    if variant not in names:
        raise UnknownVariant(
            f"experiment {experiment.key!r} has no variant {variant!r}; it has {names}",
            {"variant": variant, "variants": names},
        )


# ---- create ------------------------------------------------------------------------------------
def _config(body: ExperimentCreate, variants: list[dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if body.bandit:
        config["bandit"] = jsonable(body.bandit)
    if body.canary:
        canary = jsonable(body.canary)
        canary.setdefault("model_name", body.model_name)
        canary["baseline_version"] = canary.get("baseline_version") or variants[0].get("model_version")
        canary["candidate_version"] = canary.get("candidate_version") or variants[1].get("model_version")
        config["canary"] = canary
    return config


def _new_experiment(body: ExperimentCreate) -> Experiment:
    assert body.key is not None and body.name is not None
    now = utcnow()
    variants = [v.model_dump(mode="json") for v in body.variants]
    config = _config(body, variants)
    if body.mode == "canary":
        # a canary starts at its first stage, whatever weights were given
        first = config["canary"]["stages"][0] / 100
        variants = _weighted(variants, [1 - first, first])
    return Experiment(
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


def create_experiment(session: Session, body: ExperimentCreate) -> Experiment:
    assert body.key is not None
    repository.lock_new_key(session, body.key)
    if repository.key_taken(session, body.key):
        raise ExperimentExists(f"experiment {body.key!r} already exists", {"key": body.key})
    experiment = _new_experiment(body)
    repository.add(session, experiment)
    repository.flush(session)
    first = Phase(
        experiment_id=experiment.id,
        number=1,
        seed=experiment.seed,
        variants=experiment.variants,
        coverage=experiment.coverage,
        reason="created",
        started_at=experiment.created_at,
    )
    repository.add(session, first)
    repository.flush(session)
    return experiment


def _weighted(variants: list[dict[str, Any]], weights: list[float]) -> list[dict[str, Any]]:
    return [{**v, "weight": round(w, 6)} for v, w in zip(variants, weights, strict=True)]


# ---- lifecycle and phases -------------------------------------------------------------------------
def transition(session: Session, experiment: Experiment, action: str) -> Experiment:
    allowed, target = TRANSITIONS[action]
    if experiment.status not in allowed:
        raise InvalidTransition(
            f"cannot {action} an experiment that is {experiment.status}",
            {"status": experiment.status, "action": action},
        )
    now = utcnow()
    experiment.status = target
    experiment.updated_at = now
    if action == "start" and experiment.started_at is None:
        experiment.started_at = now
    if action == "stop":
        experiment.stopped_at = now
    return experiment


def apply_transition(session: Session, experiment: Experiment, action: str) -> Experiment:
    """A lifecycle request: the transition, written before the answer is built."""
    transition(session, experiment, action)
    repository.flush(session)
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
    current = repository.phase(session, experiment.id, experiment.phase)
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
    repository.add(session, phase)
    return phase


def _new_variants(experiment: Experiment, body: ExperimentUpdate) -> list[dict[str, Any]]:
    if body.variants is None:
        return experiment.variants
    variants = [v.model_dump(mode="json") for v in body.variants]
    if experiment.mode == "canary" and [v["name"] for v in variants] != variant_names(experiment):
        raise InvalidVariants("a canary's variants cannot be renamed")
    return variants or experiment.variants


def _reassign_draft(
    session: Session, experiment: Experiment, variants: list[dict[str, Any]], body: ExperimentUpdate
) -> None:
    experiment.variants = variants
    if body.coverage is not None:
        experiment.coverage = body.coverage
    phase = repository.phase(session, experiment.id, experiment.phase)
    if phase is not None:
        phase.variants, phase.coverage = variants, experiment.coverage


def update_experiment(session: Session, experiment: Experiment, body: ExperimentUpdate) -> Experiment:
    if experiment.status == Status.ARCHIVED:
        raise ExperimentArchived("an archived experiment cannot change")
    for field in ("name", "description", "hypothesis"):
        value = getattr(body, field)
        if value is not None:
            setattr(experiment, field, value)
    if body.variants is not None or body.coverage is not None or body.reassign:
        variants = _new_variants(experiment, body)
        if experiment.status == Status.DRAFT:
            _reassign_draft(session, experiment, variants, body)
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
    repository.flush(session)
    return experiment


# ---- reads --------------------------------------------------------------------------------------
def definition(session: Session, experiment: Experiment) -> dict[str, Any]:
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
        "overrides": repository.overrides(session, experiment.id),
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


def list_experiments(
    session: Session, status: str | None, mode: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    total, rows = repository.page(session, status, mode, limit, offset)
    return total, [experiment_json(e) for e in rows]


def phase_json(phase: Phase) -> dict[str, Any]:
    return {
        "number": phase.number,
        "seed": phase.seed,
        "variants": phase.variants,
        "coverage": phase.coverage,
        "reason": phase.reason,
        "started_at": phase.started_at.isoformat(),
        "ended_at": phase.ended_at.isoformat() if phase.ended_at else None,
    }


def list_phases(session: Session, experiment: Experiment) -> list[dict[str, Any]]:
    return [phase_json(p) for p in repository.phases(session, experiment.id)]


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "kind": decision.kind,
        "phase": decision.phase,
        "details": decision.details,
        "at": decision.at.isoformat() if decision.at else None,
    }


def list_decisions(
    session: Session, experiment: Experiment, kind: str | None, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    total, rows = repository.decisions(session, experiment.id, kind, limit, offset)
    return total, [decision_json(d) for d in rows]


# ---- overrides and decisions -----------------------------------------------------------------------
def set_override(session: Session, experiment: Experiment, user_id: str, variant: str) -> None:
    check_variant(experiment, variant)
    row = repository.override(session, experiment.id, user_id)
    if row is None:
        repository.add(session, Override(experiment_id=experiment.id, user_id=user_id, variant=variant))
    else:
        row.variant = variant


def delete_override(session: Session, experiment: Experiment, user_id: str) -> None:
    repository.delete_override(session, experiment.id, user_id)


def record_decision(session: Session, experiment: Experiment, kind: str, details: dict[str, Any]) -> Decision:
    decision = Decision(experiment_id=experiment.id, kind=kind, phase=experiment.phase, details=details)
    repository.add(session, decision)
    return decision
