"""Canary rollout of a model version: staged traffic, guardrails, automatic rollback or promotion.

A canary experiment has two variants — the baseline first, the candidate second — and
``config["canary"]``: ``stages`` (percent of traffic on the candidate, ending at 100),
``stage_seconds``, ``min_samples`` (exposed users per variant before a stage may pass),
``alpha``, the registry ``model_name`` / ``alias`` and the ``baseline_version`` /
``candidate_version``. The controller's state lives beside them in the same dict:

- ``status``: running | rolled_back | promoted; ``stage`` (index into ``stages``),
  ``stage_started_at``, ``phase`` (the experiment phase of the current stage);
- ``previous_alias``: ``{"version": ..., "checked_at": ...}`` — where the alias pointed when the
  canary was first evaluated (a rollback restores it; the baseline version when it is unknown,
  absent, or was the candidate already);
- ``pending_registry``: an alias move decided but not yet done (retried on every tick while the
  registry is unreachable; one caller at a time carries it out, holding it with ``settling_until``);
  ``registry``: the outcome of the last one.

Each evaluation (every controller tick, or ``POST /api/experiments/{e}/evaluate``) compares the
candidate with the baseline on every guardrail metric, in the current stage's phase (each stage is
a phase with fixed weights; users keep their bucket across stages: the seed does not change):

- test: the always-valid one-sided mixture SPRT in the metric's *bad* direction (an increase for
  ``direction: lower``, a decrease for ``higher``) at level ``alpha``. The estimate ``d`` and its
  variance ``V`` come from ``stats.compare`` (Welch / two-proportion / delta method, CUPED-adjusted
  when covariates exist); with the normal mixing distribution restricted to the bad half-line
  (half-normal, the ``τ`` that ``compare`` tunes to ``min_samples`` units per variant):

      Λ⁺ = 2 · Φ(τ·b / √(V·(V + τ²))) · √(V / (V + τ²)) · exp(τ²·b² / (2·V·(V + τ²)))

  with ``b`` the difference in the bad direction. ``Λ⁺`` is a nonnegative supermartingale for every
  "not worse" truth (δ in the good half-line or 0), so ``p = min(1, 1/Λ⁺)`` is an always-valid
  one-sided p-value: the canary may look at every tick without inflating its false rollback rate
  beyond ``alpha`` per stage. A guardrail is tested once both arms have at least
  ``min(20, min_samples)`` units (the normal approximation needs a few).
- any regression (``p < alpha``, difference in the bad direction) → **rollback**: traffic back to
  the baseline (a new phase with weights [1, 0]), the experiment stopped, the registry alias
  restored (``previous_alias``, else the baseline version);
- no regression, ``stage_seconds`` elapsed, ``min_samples`` exposed users in both arms and every
  guardrail testable → **advance** to the next stage (a new phase with the new weights, same seed);
  passing the last stage below 100 % → **promote**: the alias moves to the candidate version, a last
  phase with weights [0, 1] is opened and the experiment stopped;
- otherwise **hold**, recorded only when its reasons change within a stage.

The primary metric (if any) is compared too (two-sided) and its figures go into the evidence; it
never decides. Alias moves happen after the decision's transaction commits, outside any database
transaction; their outcome is written into the decision (``details.registry``). While a manual
promotion holds the experiment (``rollouts.promotion``) a rollback or promote waits for the next
evaluation, so the alias always matches the last recorded decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.audit import utcnow
from mlops_kit.db import Database
from scipy import special
from sqlalchemy.orm import Session

from ab_testing.experiments import get_experiment, new_phase, record_decision, transition
from ab_testing.rollouts import PhaseData, load_phase, metric_by_name, promotion, repository, rounded
from ab_testing.rollouts.registry import Registry, RegistryError
from ab_testing.stats import Comparison, VariantSummary, compare
from ab_testing.stats import sequential as seq
from ab_testing.tables import Decision, Experiment, Status

#: units per arm before a guardrail's test counts (at most min_samples)
MIN_TEST_UNITS = 20
RUNNING, ROLLED_BACK, PROMOTED = "running", "rolled_back", "promoted"


# ---- pure statistics --------------------------------------------------------------------------------
def one_sided_p_value(bad_diff: float, variance: float, tau2: float) -> float:
    """Always-valid one-sided p-value of "the difference is positive in the bad direction"
    (half-normal mixture SPRT): ``min(1, 1/Λ⁺)``; ``bad_diff`` is the estimated difference signed so
    that positive is bad."""
    if variance <= 0 or tau2 <= 0:
        return 0.0 if bad_diff > 0 else 1.0
    total = variance + tau2
    z = math.sqrt(tau2) * bad_diff / math.sqrt(variance * total)
    log_lr = (
        math.log(2.0)
        + float(special.log_ndtr(z))
        + seq.log_mixture_likelihood_ratio(bad_diff, variance, tau2)
    )
    return 1.0 if log_lr <= 0 else math.exp(-log_lr)


def guardrail_check(
    metric: dict[str, Any],
    baseline: Any,
    candidate: Any,
    *,
    alpha: float,
    min_samples: int,
    role: str = "guardrail",
) -> dict[str, Any]:
    """Candidate vs baseline on one metric: the evidence dict, with ``testable`` and ``regression``."""
    direction = metric.get("direction", "higher")
    c = compare(
        metric["type"],
        baseline,
        candidate,
        alpha=alpha,
        direction=direction,
        sequential_n=max(min_samples, 2),
    )
    floor = max(2, min(MIN_TEST_UNITS, min_samples))
    testable = (
        c.control.n >= floor
        and c.treatment.n >= floor
        and c.std_error is not None
        and c.sequential is not None
    )
    out: dict[str, Any] = {
        "metric": metric["name"],
        "role": role,
        "type": c.metric_type,
        "direction": direction,
        "bad_direction": "increase" if direction == "lower" else "decrease",
        "baseline": _summary(c.control),
        "candidate": _summary(c.treatment),
        "abs_lift": rounded(c.abs_lift),
        "rel_lift": rounded(c.rel_lift),
        "alpha": alpha,
        "testable": testable,
        "min_units": floor,
        "test": "msprt_one_sided",
        "p_value": None,
        "regression": False,
        "sequential_two_sided": None,
        "fixed_horizon": {"test": c.test, "p_value": rounded(c.p_value), "ci": _pair(c.abs_lift_ci)},
        "bayesian": None,
    }
    out.update(_other_tests(c))
    if testable:
        assert c.std_error is not None and c.sequential is not None
        bad = c.abs_lift if direction == "lower" else -c.abs_lift
        p = one_sided_p_value(bad, c.std_error**2, c.sequential.tau**2)
        out["p_value"] = rounded(p)
        out["regression"] = role == "guardrail" and bad > 0 and p < alpha
    return out


def _other_tests(c: Comparison) -> dict[str, Any]:
    """The figures of the tests that do not decide (for the evidence)."""
    out: dict[str, Any] = {}
    if c.bayesian is not None:
        out["bayesian"] = {
            "chance_to_win": rounded(c.bayesian.chance_to_win),
            "expected_loss": rounded(c.bayesian.expected_loss),
        }
    if c.sequential is not None:
        out["sequential_two_sided"] = {
            "p_value": rounded(c.sequential.p_value),
            "confidence_sequence": _pair(c.sequential.ci),
            "tau": rounded(c.sequential.tau),
        }
    if c.cuped is not None:
        out["cuped"] = {
            "theta": rounded(c.cuped.theta),
            "variance_reduction": rounded(c.cuped.variance_reduction),
        }
    return out


def _summary(side: VariantSummary) -> dict[str, Any]:
    n = int(side.n) if float(side.n).is_integer() else side.n
    return {"n": n, "mean": rounded(side.mean), "std": rounded(side.std)}


def _pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [rounded(pair[0]), rounded(pair[1])]


@dataclass
class Verdict:
    """What one evaluation concludes: ``action`` rollback | advance | promote | hold."""

    action: str
    reasons: list[str] = field(default_factory=list)


def decide(
    *,
    percent: float,
    is_last_below_full: bool,
    elapsed_seconds: float,
    stage_seconds: float,
    exposures: tuple[int, int],
    min_samples: int,
    checks: list[dict[str, Any]],
) -> Verdict:
    """The canary's decision from one evaluation's figures (pure)."""
    regressions = [c["metric"] for c in checks if c.get("regression")]
    if regressions:
        return Verdict("rollback", [f"guardrail regression: {m}" for m in regressions])
    if percent >= 100:
        return Verdict("promote", ["the candidate already has all the traffic"])
    reasons = []
    if elapsed_seconds < stage_seconds:
        reasons.append("stage_time")
    if min(exposures) < min_samples:
        reasons.append("min_samples")
    reasons += [
        f"untestable:{c['metric']}" for c in checks if c.get("role") == "guardrail" and not c["testable"]
    ]
    if reasons:
        return Verdict("hold", reasons)
    return Verdict("promote" if is_last_below_full else "advance", ["guardrails passed"])


# ---- state ------------------------------------------------------------------------------------------
def _weights(variants: list[dict[str, Any]], candidate_share: float) -> list[dict[str, Any]]:
    share = min(max(candidate_share, 0.0), 1.0)
    return [{**variants[0], "weight": round(1 - share, 6)}, {**variants[1], "weight": round(share, 6)}]


def config(experiment: Experiment) -> dict[str, Any]:
    return dict(experiment.config.get("canary") or {})


def _save(experiment: Experiment, canary: dict[str, Any]) -> None:
    experiment.config = {**experiment.config, "canary": canary}  # a new dict: JSON columns track assignment


def model_name(experiment: Experiment, canary: dict[str, Any]) -> str | None:
    return canary.get("model_name") or experiment.model_name


def alias_probe_target(experiment: Experiment) -> tuple[str, str] | None:
    """(model, alias) whose current target must be recorded before the canary goes on, if any."""
    canary = config(experiment)
    model = model_name(experiment, canary)
    if (
        experiment.mode != "canary"
        or experiment.status != Status.RUNNING
        or canary.get("status", RUNNING) != RUNNING
        or model is None
        or "previous_alias" in canary
    ):
        return None
    return model, canary.get("alias") or "production"


def pending_registry(experiment: Experiment) -> dict[str, Any] | None:
    pending = config(experiment).get("pending_registry")
    return dict(pending) if pending else None


def _iso(value: datetime) -> str:
    return value.isoformat()


def _parse(value: str | None, default: datetime) -> datetime:
    return datetime.fromisoformat(value) if value else default


@dataclass
class Outcome:
    """One evaluation: the verdict, the decision recorded (if any), whether routing changed."""

    verdict: Verdict | None
    decision: Decision | None = None
    routing_changed: bool = False
    evaluation: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CanaryConfig:
    """What a canary was created with (``config["canary"]``; the controller's state sits beside it
    in the same dict). Missing values take the defaults the create request has."""

    stages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    stage_seconds: float = 3600.0
    min_samples: int = 200
    alpha: float = 0.05
    alias: str = "production"
    model_name: str | None = None
    baseline_version: str | None = None
    candidate_version: str | None = None

    @classmethod
    def of(cls, canary: dict[str, Any]) -> CanaryConfig:
        def given(name: str) -> Any:
            value = canary.get(name)
            return getattr(cls, name) if value is None else value

        return cls(
            stages=tuple(given("stages")),
            stage_seconds=float(given("stage_seconds")),
            min_samples=int(given("min_samples")),
            alpha=float(given("alpha")),
            alias=canary.get("alias") or cls.alias,
            model_name=canary.get("model_name"),
            baseline_version=canary.get("baseline_version"),
            candidate_version=canary.get("candidate_version"),
        )


def _check(
    experiment: Experiment,
    data: PhaseData,
    metric: dict[str, Any],
    *,
    alpha: float,
    min_samples: int,
    role: str,
) -> dict[str, Any]:
    base, cand = experiment.variants[0]["name"], experiment.variants[1]["name"]
    baseline, candidate = data.metric(metric, base), data.metric(metric, cand)
    return guardrail_check(metric, baseline, candidate, alpha=alpha, min_samples=min_samples, role=role)


def _guardrails(experiment: Experiment, settings: CanaryConfig, data: PhaseData) -> list[dict[str, Any]]:
    metrics = [metric_by_name(experiment, name) for name in experiment.guardrail_metrics]
    return [
        _check(experiment, data, m, alpha=settings.alpha, min_samples=settings.min_samples, role="guardrail")
        for m in metrics
        if m is not None
    ]


def _primary(experiment: Experiment, settings: CanaryConfig, data: PhaseData) -> dict[str, Any] | None:
    metric = metric_by_name(experiment, experiment.primary_metric)
    if metric is None or metric["name"] in experiment.guardrail_metrics:
        return None
    alpha = experiment.significance_level
    return _check(experiment, data, metric, alpha=alpha, min_samples=settings.min_samples, role="primary")


def evaluate(
    experiment: Experiment, canary: dict[str, Any], data: PhaseData, now: datetime
) -> dict[str, Any]:
    """The figures of one evaluation (guardrails and the primary metric), JSON-able."""
    settings = CanaryConfig.of(canary)
    base, cand = experiment.variants[0]["name"], experiment.variants[1]["name"]
    stage = int(canary.get("stage", 0))
    started = _parse(canary.get("stage_started_at"), now)
    return {
        "stage": stage,
        "percent": settings.stages[stage],
        "stage_started_at": _iso(started),
        "elapsed_seconds": round((now - started).total_seconds(), 3),
        "stage_seconds": settings.stage_seconds,
        "min_samples": settings.min_samples,
        "phase": data.phase,
        "exposures": {base: data.exposures.get(base, 0), cand: data.exposures.get(cand, 0)},
        "guardrails": _guardrails(experiment, settings, data),
        "primary": _primary(experiment, settings, data),
    }


def _is_running(experiment: Experiment, canary: dict[str, Any]) -> bool:
    return experiment.status == Status.RUNNING and canary.get("status", RUNNING) == RUNNING


def _sync_state(
    experiment: Experiment, canary: dict[str, Any], now: datetime, probe: dict[str, Any] | None
) -> bool:
    """Bring the controller's state up to date with the experiment; whether it changed."""
    changed = False
    if "stage" not in canary:
        started = _iso(experiment.started_at or now)
        canary.update(status=RUNNING, stage=0, stage_started_at=started, phase=experiment.phase)
        changed = True
    if canary.get("phase") != experiment.phase:
        # the weights were changed by hand (a new phase): this stage's clock starts again
        canary.update(phase=experiment.phase, stage_started_at=_iso(now), last_hold=None)
        changed = True
    if probe is not None and "previous_alias" not in canary and "version" in probe:
        canary["previous_alias"] = {"version": probe["version"], "checked_at": _iso(now)}
        changed = True
    return changed


def _verdict(experiment: Experiment, stage: int, settings: CanaryConfig, figures: dict[str, Any]) -> Verdict:
    stages = settings.stages
    base, cand = experiment.variants[0]["name"], experiment.variants[1]["name"]
    return decide(
        percent=stages[stage],
        is_last_below_full=stage + 1 < len(stages) and stages[stage + 1] >= 100,
        elapsed_seconds=figures["elapsed_seconds"],
        stage_seconds=settings.stage_seconds,
        exposures=(figures["exposures"][base], figures["exposures"][cand]),
        min_samples=settings.min_samples,
        checks=figures["guardrails"],
    )


def _hold(
    session: Session, experiment: Experiment, canary: dict[str, Any], outcome: Outcome, changed: bool
) -> Outcome:
    """A hold is recorded only when its reasons change within a stage."""
    assert outcome.verdict is not None
    signature = sorted(outcome.verdict.reasons)
    if canary.get("last_hold") != signature:
        canary["last_hold"] = signature
        details = {k: v for k, v in outcome.evaluation.items() if k != "action"}
        outcome.decision = record_decision(session, experiment, "hold", details)
        changed = True
    if changed:
        _save(experiment, canary)
    return outcome


def _advance(
    session: Session, experiment: Experiment, canary: dict[str, Any], outcome: Outcome, now: datetime
) -> Outcome:
    stages, stage = canary["stages"], int(canary["stage"])
    nxt = stage + 1
    details = {k: v for k, v in outcome.evaluation.items() if k != "action"}
    details.update(from_percent=stages[stage], to_percent=stages[nxt])
    outcome.decision = record_decision(session, experiment, "advance", details)
    weights = _weights(experiment.variants, stages[nxt] / 100)
    new_phase(session, experiment, weights, reason=f"canary {stages[nxt]:g}%")
    canary.update(stage=nxt, stage_started_at=_iso(now), phase=experiment.phase, last_hold=None)
    _save(experiment, canary)
    outcome.routing_changed = True
    return outcome


def _wait(experiment: Experiment, canary: dict[str, Any], held: dict[str, Any], changed: bool) -> Outcome:
    """A manual promotion is moving the alias: one decision at a time."""
    reasons = [f"promotion to {held['model']}@{held['alias']} = {held['version']} in flight"]
    if changed:
        _save(experiment, canary)
    return Outcome(Verdict("wait", reasons), evaluation={"action": "wait", "reasons": reasons})


@dataclass(frozen=True)
class _Ending:
    """How a canary ends: the alias operation, its target version, the candidate's final share."""

    op: str
    target: str | None
    share: float
    status: str


def _ending(action: str, canary: dict[str, Any], settings: CanaryConfig) -> _Ending:
    if action != "rollback":
        return _Ending("promote", settings.candidate_version, 1.0, PROMOTED)
    previous = (canary.get("previous_alias") or {}).get("version")
    if previous == settings.candidate_version:
        previous = None  # the alias already pointed at the candidate: back to the baseline
    return _Ending("restore", previous or settings.baseline_version, 0.0, ROLLED_BACK)


def _registry_plan(model: str | None, alias: str, ending: _Ending) -> dict[str, Any]:
    if model and ending.target:
        return {
            "status": "pending",
            "action": ending.op,
            "model": model,
            "alias": alias,
            "version": ending.target,
        }
    side = "baseline" if ending.op == "restore" else "candidate"
    missing = "model_name" if not model else f"{side}_version"
    return {"status": "skipped", "action": ending.op, "reason": f"no {missing}: the registry is not touched"}


def _finish(
    session: Session, experiment: Experiment, canary: dict[str, Any], outcome: Outcome, now: datetime
) -> Outcome:
    """Rollback or promote: traffic to one side, the experiment stopped, an alias move pending."""
    assert outcome.verdict is not None
    action = outcome.verdict.action
    settings = CanaryConfig.of(canary)
    ending = _ending(action, canary, settings)
    details = {k: v for k, v in outcome.evaluation.items() if k != "action"}
    if action != "rollback":
        details.update(from_percent=canary["stages"][int(canary["stage"])], to_percent=100.0)
    registry = _registry_plan(model_name(experiment, canary), settings.alias, ending)
    details["registry"] = registry
    outcome.decision = record_decision(session, experiment, action, details)
    repository.flush(session)  # the decision's id, for the registry outcome
    new_phase(session, experiment, _weights(experiment.variants, ending.share), reason=action)
    transition(session, experiment, "stop")
    canary.update(status=ending.status, phase=experiment.phase, finished_at=_iso(now), last_hold=None)
    if registry["status"] == "pending":
        moves = {k: registry[k] for k in ("action", "model", "alias", "version")}
        canary["pending_registry"] = {**moves, "decision_id": outcome.decision.id, "attempts": 0}
    _save(experiment, canary)
    outcome.routing_changed = True
    return outcome


def step(
    session: Session, experiment: Experiment, now: datetime, probe: dict[str, Any] | None = None
) -> Outcome:
    """Evaluate a running canary once, in the caller's transaction: apply and record the decision
    (rollback / advance / promote, or a hold when its reasons changed). An alias move it decides is
    left in ``pending_registry`` for :func:`settle` to carry out after the commit."""
    canary = config(experiment)
    if not _is_running(experiment, canary):
        return Outcome(None)
    changed = _sync_state(experiment, canary, now, probe)
    figures = evaluate(experiment, canary, load_phase(session, experiment), now)
    verdict = _verdict(experiment, int(canary["stage"]), CanaryConfig.of(canary), figures)
    outcome = Outcome(
        verdict, evaluation={"action": verdict.action, "reasons": verdict.reasons, "evidence": figures}
    )
    if verdict.action == "hold":
        return _hold(session, experiment, canary, outcome, changed)
    if verdict.action == "advance":
        return _advance(session, experiment, canary, outcome, now)
    held = promotion.active_claim(experiment, now)
    if held is not None:
        return _wait(experiment, canary, held, changed)
    return _finish(session, experiment, canary, outcome, now)


def registry_result(
    session: Session, experiment: Experiment, pending: dict[str, Any], result: dict[str, Any], *, done: bool
) -> Decision | None:
    """Write an alias move's outcome into the canary state and its decision (caller's transaction)."""
    canary = config(experiment)
    current = canary.get("pending_registry") or {}
    if current.get("decision_id") != pending.get("decision_id"):
        return None  # settled meanwhile (another replica)
    if done:
        canary.pop("pending_registry", None)
        canary["registry"] = result
    else:
        canary["pending_registry"] = {
            **{k: v for k, v in current.items() if k != "settling_until"},  # the next tick retries
            "attempts": int(current.get("attempts", 0)) + 1,
            "last_error": result.get("error"),
        }
    _save(experiment, canary)
    decision = repository.decision(session, pending.get("decision_id"))
    if decision is not None:
        decision.details = {**decision.details, "registry": result}
    return decision


def _take_pending(db: Database, experiment_id: str, now: datetime) -> tuple[dict[str, Any], str] | None:
    """The pending alias move and the experiment's key, held for this caller (row locked) so that
    concurrent evaluations carry it out once; None when none is pending or another caller holds it
    (for at most ``promotion.CLAIM_SECONDS``)."""
    with db.session(write=True) as session:
        experiment = get_experiment(session, experiment_id, lock=True)
        pending = pending_registry(experiment)
        if pending is None or _parse(pending.get("settling_until"), now) > now:
            return None
        canary = config(experiment)
        until = now + timedelta(seconds=promotion.CLAIM_SECONDS)
        canary["pending_registry"] = {**pending, "settling_until": _iso(until)}
        _save(experiment, canary)
        key = experiment.key
        session.commit()
    return pending, key


def settle(db: Database, experiment_id: str, registry: Registry) -> Decision | None:
    """Carry out a pending alias move (outside any database transaction), then record its outcome.
    An unreachable registry leaves the move pending for the next tick; a rejection (unknown model or
    version, a missing key) is final and recorded as ``failed``."""
    with db.session(write=False) as session:
        if pending_registry(get_experiment(session, experiment_id)) is None:
            return None
    taken = _take_pending(db, experiment_id, utcnow())
    if taken is None:
        return None
    pending, key = taken
    where = {k: pending[k] for k in ("action", "model", "alias", "version")}
    try:
        move = registry.move_alias(
            pending["model"],
            pending["alias"],
            pending["version"],
            comment=f"A/B testing: canary {key!r} {pending['action']}",
        )
        result: dict[str, Any] = {"status": "done", **where, **move.to_dict(), "at": _iso(utcnow())}
        done = True
    except RegistryError as exc:
        done = not exc.retryable
        result = {
            "status": "retrying" if exc.retryable else "failed",
            **where,
            "error": exc.to_dict(),
            "attempts": int(pending.get("attempts", 0)) + 1,
            "at": _iso(utcnow()),
        }
    with db.session(write=True) as session:
        experiment = get_experiment(session, experiment_id, lock=True)
        decision = registry_result(session, experiment, pending, result, done=done)
        session.commit()
    return decision
