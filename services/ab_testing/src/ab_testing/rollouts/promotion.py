"""One alias decision at a time per experiment: claim, move the registry alias, complete.

The registry is called over HTTP, so never inside a database transaction. A manual promotion
therefore runs in three steps:

1. **claim** (a short transaction, the experiment's row locked): refused with 409
   ``DECISION_IN_PROGRESS`` while another promotion or a canary's alias move is in flight;
   otherwise the decision is recorded (``details.registry.status: pending``) and
   ``config["promoting"]`` names it;
2. the alias is moved, outside any transaction;
3. **complete** (the request's transaction, row locked): the decision gets the registry's outcome
   and the claim is cleared; or **release** on failure: the claim and its decision are removed
   (nothing happened, nothing is recorded).

The canary controller holds its own decisions while a claim is in flight, and a promotion is
refused while the canary's alias move is pending, so the alias always matches the last recorded
decision. A claim older than :data:`CLAIM_SECONDS` (its process died mid-way) is abandoned: the
next promotion removes its decision and takes over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import Database
from sqlalchemy.orm import Session

from ab_testing.errors import DecisionInProgress, PromotionAbandoned
from ab_testing.experiments import get_experiment, record_decision
from ab_testing.rollouts import repository
from ab_testing.rollouts.registry import AliasMove
from ab_testing.tables import Decision, Experiment

__all__ = [
    "CLAIM_SECONDS",
    "Claim",
    "DecisionInProgress",
    "PromotionAbandoned",
    "claim",
    "complete",
    "release",
]

log = logging.getLogger("mlops.ab.rollouts")

#: seconds a claim holds: well above the longest registry move (two calls, 10 s timeouts, 2 retries)
CLAIM_SECONDS = 120.0
CLAIM = "promoting"


@dataclass(frozen=True)
class Claim:
    experiment_id: str
    decision_id: int
    model: str
    alias: str
    version: str


def active_claim(experiment: Experiment, now: datetime) -> dict[str, Any] | None:
    """The promotion claim in flight on this experiment, if any (an expired one is not)."""
    claim = (experiment.config or {}).get(CLAIM)
    if not claim or datetime.fromisoformat(claim["expires_at"]) <= now:
        return None
    return dict(claim)


def _in_flight(experiment: Experiment, now: datetime) -> dict[str, Any] | None:
    claim = active_claim(experiment, now)
    if claim is not None:
        return {"kind": "promotion", **claim}
    pending = ((experiment.config or {}).get("canary") or {}).get("pending_registry")
    if pending:
        return {"kind": "canary", **pending}
    return None


def _drop_abandoned(session: Session, experiment: Experiment) -> None:
    stale = (experiment.config or {}).get(CLAIM)
    if not stale:
        return
    log.warning("experiment %s: promotion claim %s expired; taking over", experiment.key, stale)
    decision = repository.decision(session, stale.get("decision_id"))
    if decision is not None:
        repository.delete_decision(session, decision)
    _set_claim(experiment, None)


def _set_claim(experiment: Experiment, claim: dict[str, Any] | None) -> None:
    config = {k: v for k, v in experiment.config.items() if k != CLAIM}
    experiment.config = config if claim is None else {**config, CLAIM: claim}  # a new dict: tracked


def claim(db: Database, experiment_id: str, move: dict[str, str], details: dict[str, Any]) -> Claim:
    """Record the promotion to ``move`` (``model``, ``alias``, ``version``) as pending and hold the
    experiment's alias decisions for it; 409 when another decision is in flight."""
    now = utcnow()
    with db.session(write=True) as session:
        experiment = get_experiment(session, experiment_id, lock=True)
        busy = _in_flight(experiment, now)
        if busy is not None:
            raise DecisionInProgress(
                f"experiment {experiment.key!r} has a {busy['kind']} decision in flight "
                f"(moving {busy['model']}@{busy['alias']} to {busy['version']}); try again when it is done",
                busy,
            )
        _drop_abandoned(session, experiment)
        registry = {"status": "pending", "action": "promote", **move}
        decision = record_decision(session, experiment, "promote", {**details, "registry": registry})
        repository.flush(session)  # the decision's id
        expires = now + timedelta(seconds=CLAIM_SECONDS)
        _set_claim(
            experiment,
            {
                **move,
                "decision_id": decision.id,
                "claimed_at": now.isoformat(),
                "expires_at": expires.isoformat(),
            },
        )
        session.commit()
        return Claim(experiment.id, decision.id, move["model"], move["alias"], move["version"])


def _held(session: Session, held: Claim) -> Experiment:
    experiment = get_experiment(session, held.experiment_id, lock=True)
    current = (experiment.config or {}).get(CLAIM) or {}
    if current.get("decision_id") != held.decision_id:
        raise PromotionAbandoned(
            f"the promotion of experiment {experiment.key!r} took longer than {CLAIM_SECONDS:g} s "
            "and was taken over by another decision",
            {"decision_id": held.decision_id},
        )
    return experiment


def complete(session: Session, held: Claim, move: AliasMove) -> Decision:
    """Write the alias move into the claimed decision and clear the claim (caller's transaction)."""
    experiment = _held(session, held)
    decision = repository.decision(session, held.decision_id)
    assert decision is not None
    outcome = {"status": "done", "action": "promote", **move.to_dict(), "at": utcnow().isoformat()}
    decision.details = {**decision.details, "registry": outcome}
    _set_claim(experiment, None)
    return decision


def release(db: Database, held: Claim) -> None:
    """Undo a claim whose alias move failed: its decision and the claim are removed."""
    with db.session(write=True) as session:
        try:
            experiment = _held(session, held)
        except PromotionAbandoned:
            return
        decision = repository.decision(session, held.decision_id)
        if decision is not None:
            repository.delete_decision(session, decision)
        _set_claim(experiment, None)
        session.commit()
