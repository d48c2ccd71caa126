"""The promote and evaluate requests: which variant wins, and moving the registry alias to it.

Framework-free: the router hands in the database, the registry client and the request's session.
The registry is called over HTTP, never inside a database transaction (see ``promotion``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops_kit.db import Database
from sqlalchemy.orm import Session

from ab_testing.errors import (
    NoModelName,
    NoModelVersion,
    NotARollout,
    NoWinner,
    RegistryRejected,
    RegistryUnavailable,
)
from ab_testing.experiments import service as experiments
from ab_testing.folding import fold_for_read
from ab_testing.rollouts import PhaseData, load_phase, metric_by_name, promotion, repository, rounded
from ab_testing.rollouts.controller import RolloutController
from ab_testing.rollouts.registry import Registry, RegistryError
from ab_testing.rollouts.schemas import PromotionCreate
from ab_testing.stats import Comparison, adjust_pvalues, compare
from ab_testing.tables import Experiment

ROLLOUT_MODES = ("bandit", "canary")


# ---- the winner ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Contender:
    """One variant against the control on the primary metric."""

    name: str
    comparison: Comparison
    p_value: float | None


def _contenders(
    experiment: Experiment, data: PhaseData, metric: dict[str, Any], test: str
) -> list[_Contender]:
    control = experiments.control_name(experiment.variants)
    out = []
    for name in experiments.variant_names(experiment):
        if name == control:
            continue
        c = compare(
            metric["type"],
            data.metric(metric, control),
            data.metric(metric, name),
            alpha=experiment.significance_level,
            direction=metric.get("direction", "higher"),
        )
        p = c.sequential.p_value if test == "sequential" and c.sequential is not None else c.p_value
        out.append(_Contender(name, c, p))
    return out


def _adjusted(contenders: list[_Contender]) -> list[float | None]:
    raw = [c.p_value for c in contenders]
    return adjust_pvalues(raw, "holm") if len(contenders) > 1 else raw


def _better(c: _Contender, p_adjusted: float | None, direction: str, alpha: float) -> bool:
    good = c.comparison.abs_lift > 0 if direction == "higher" else c.comparison.abs_lift < 0
    return p_adjusted is not None and p_adjusted < alpha and good


def _figures(c: _Contender, p_adjusted: float | None, several: bool, better: bool) -> dict[str, Any]:
    return {
        "variant": c.name,
        "n": c.comparison.treatment.n,
        "mean": rounded(c.comparison.treatment.mean),
        "abs_lift": rounded(c.comparison.abs_lift),
        "rel_lift": rounded(c.comparison.rel_lift),
        "p_value": rounded(c.p_value),
        "p_value_adjusted": rounded(p_adjusted) if several else None,
        "significantly_better": better,
    }


def _evidence(
    experiment: Experiment, data: PhaseData, metric: dict[str, Any], test: str, figures: list[dict[str, Any]]
) -> dict[str, Any]:
    control = experiments.control_name(experiment.variants)
    return {
        "metric": metric["name"],
        "direction": metric.get("direction", "higher"),
        "phase": data.phase,
        "test": test,
        "alpha": experiment.significance_level,
        "correction": "holm" if len(figures) > 1 else None,
        "control": {
            "variant": control,
            "n": data.metric(metric, control).n,
            "mean": rounded(data.metric(metric, control).mean),
        },
        "variants": figures,
    }


def pick_winner(experiment: Experiment, data: PhaseData, test: str) -> tuple[str | None, dict[str, Any]]:
    """The best variant on the primary metric that is significantly better than the control in the
    current phase (Holm-adjusted over the variants when there are several) and the evidence; None
    when there is none (the evidence's ``reason`` says why)."""
    metric = metric_by_name(experiment, experiment.primary_metric)
    if metric is None:
        return None, {"reason": "the experiment has no primary metric to pick a winner on"}
    direction, alpha = metric.get("direction", "higher"), experiment.significance_level
    contenders = _contenders(experiment, data, metric, test)
    several = len(contenders) > 1
    figures, candidates = [], []
    for c, p_adj in zip(contenders, _adjusted(contenders), strict=True):
        better = _better(c, p_adj, direction, alpha)
        figures.append(_figures(c, p_adj, several, better))
        if better:
            lift = c.comparison.abs_lift
            candidates.append((lift if direction == "higher" else -lift, c.name))
    evidence = _evidence(experiment, data, metric, test, figures)
    if not candidates:
        control = evidence["control"]["variant"]
        evidence["reason"] = (
            f"no variant is significantly better than {control!r} on {metric['name']!r} "
            f"({test} p-values at alpha {alpha:g})"
        )
        return None, evidence
    return max(candidates)[1], evidence


# ---- promote ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What a promotion will do, decided from one read of the experiment."""

    experiment_id: str
    key: str
    model: str
    variant: str
    version: str
    evidence: dict[str, Any] | None


def _choose(
    session: Session, experiment: Experiment, body: PromotionCreate
) -> tuple[str | None, dict[str, Any] | None]:
    if body.variant is not None:
        experiments.check_variant(experiment, body.variant)
        return body.variant, None
    return pick_winner(experiment, load_phase(session, experiment), body.test)


def plan(db: Database, ref: str, body: PromotionCreate) -> Plan:
    """The variant to promote and its model version (read in a short read-only transaction)."""
    with db.session(write=False) as reader:
        row = experiments.get_experiment(reader, ref)
        model = row.model_name or (row.config.get("canary") or {}).get("model_name")
        chosen, evidence = _choose(reader, row, body)
        experiment_id, key = row.id, row.key
        variants = {v["name"]: v for v in row.variants}
    if not model:
        raise NoModelName(
            f"experiment {key!r} has no model_name: there is no registry model to promote in",
            {"experiment": key},
        )
    if chosen is None:
        assert evidence is not None
        raise NoWinner(evidence.get("reason", "no winner"), evidence)
    version = variants[chosen].get("model_version")
    if not version:
        raise NoModelVersion(
            f"variant {chosen!r} of experiment {key!r} has no model_version", {"variant": chosen}
        )
    return Plan(experiment_id, key, model, chosen, str(version), evidence)


def _registry_failure(exc: RegistryError, move: dict[str, str]) -> Exception:
    details = {**move, "registry": exc.to_dict()}
    if exc.retryable:
        return RegistryUnavailable(f"the model registry is unreachable: {exc.message}", details)
    return RegistryRejected(
        f"the model registry refused to move {move['model']}@{move['alias']} to {move['version']}: "
        f"{exc.message}",
        details,
    )


def promote(
    db: Database,
    registry: Registry,
    session: Session,
    ref: str,
    body: PromotionCreate,
    *,
    fold_seconds: float,
    fold_chunk: int,
) -> dict[str, Any]:
    """Move the registry alias of the experiment's model to the winner's version; the decision
    recorded (in ``session``, the caller's transaction). 409 while another decision is in flight."""
    fold_for_read(db, fold_seconds, fold_chunk)  # the evidence counts the accepted events
    chosen = plan(db, ref, body)
    move = {"model": chosen.model, "alias": body.alias, "version": chosen.version}
    details: dict[str, Any] = {
        "variant": chosen.variant,
        "chosen_by": "request" if body.variant is not None else "primary_metric",
    }
    if chosen.evidence is not None:
        details["evidence"] = chosen.evidence
    held = promotion.claim(db, chosen.experiment_id, move, details)
    comment = f"A/B testing: experiment {chosen.key!r} promoted {chosen.variant!r}"
    try:
        moved = registry.move_alias(chosen.model, body.alias, chosen.version, comment=comment)
    except BaseException as exc:
        promotion.release(db, held)
        if isinstance(exc, RegistryError):
            raise _registry_failure(exc, move) from None
        raise
    decision = promotion.complete(session, held, moved)
    repository.flush(session)
    return experiments.decision_json(decision)


# ---- evaluate -----------------------------------------------------------------------------------
def evaluate(db: Database, controller: RolloutController, ref: str) -> dict[str, Any]:
    """The rollout controller's check for one bandit or canary, now (blocking: run in a thread)."""
    with db.session(write=False) as reader:
        row = experiments.get_experiment(reader, ref)
        if row.mode not in ROLLOUT_MODES:
            raise NotARollout(
                f"experiment {row.key!r} is an {row.mode!r} experiment: only bandits and canaries "
                "are evaluated",
                {"mode": row.mode},
            )
    return controller.evaluate(ref)
