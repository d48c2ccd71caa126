"""`POST /api/experiments/{e}/promote` (move a registry alias to the winner's model version) and
`POST /api/experiments/{e}/evaluate` (run the rollout controller's check for one experiment now)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from mlops_kit.deps import SessionDep
from mlops_kit.errors import Conflict, ServiceUnavailable, Unprocessable
from mlops_kit.openapi import answers
from pydantic import BaseModel, ConfigDict, Field

from ab_testing.api.answers import DecisionRead, EvaluationRead
from ab_testing.experiments import control_name, get_experiment
from ab_testing.folding import fold_for_read
from ab_testing.rollouts import PhaseData, load_phase, metric_by_name, promotion, rounded
from ab_testing.rollouts.controller import RolloutController, decision_json
from ab_testing.rollouts.registry import RegistryError
from ab_testing.schemas import ExperimentPath
from ab_testing.stats import adjust_pvalues, compare
from ab_testing.tables import Experiment

router = APIRouter(tags=["rollouts"])


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str | None = Field(
        default=None,
        max_length=100,
        description="default: the best variant on the primary metric significantly better than control",
    )
    alias: str = Field(default="production", max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
    test: Literal["sequential", "fixed"] = Field(
        default="sequential",
        description="which p-value picks the default winner: always-valid (safe however often the "
        "results were looked at) or fixed-horizon (only when the planned sample size was set in advance)",
    )


def _controller(request: Request) -> RolloutController:
    return request.app.state.rollouts  # type: ignore[no-any-return]


def _pick(experiment: Experiment, data: PhaseData, test: str) -> tuple[str | None, dict[str, Any]]:
    """The best variant on the primary metric that is significantly better than the control in the
    current phase (Holm-adjusted over the variants when there are several) and the evidence; None
    when there is none (the evidence's ``reason`` says why)."""
    metric = metric_by_name(experiment, experiment.primary_metric)
    if metric is None:
        return None, {"reason": "the experiment has no primary metric to pick a winner on"}
    control = control_name(experiment.variants)
    direction = metric.get("direction", "higher")
    rows = []
    for v in experiment.variants:
        if v["name"] == control:
            continue
        c = compare(
            metric["type"],
            data.metric(metric, control),
            data.metric(metric, v["name"]),
            alpha=experiment.significance_level,
            direction=direction,
        )
        p = c.sequential.p_value if test == "sequential" and c.sequential is not None else c.p_value
        rows.append((v["name"], c, p))
    adjusted = adjust_pvalues([p for _, _, p in rows], "holm") if len(rows) > 1 else [p for _, _, p in rows]
    figures = []
    candidates = []
    for (name, c, p), p_adj in zip(rows, adjusted, strict=True):
        good = c.abs_lift > 0 if direction == "higher" else c.abs_lift < 0
        significant = p_adj is not None and p_adj < experiment.significance_level
        figures.append(
            {
                "variant": name,
                "n": c.treatment.n,
                "mean": rounded(c.treatment.mean),
                "abs_lift": rounded(c.abs_lift),
                "rel_lift": rounded(c.rel_lift),
                "p_value": rounded(p),
                "p_value_adjusted": rounded(p_adj) if len(rows) > 1 else None,
                "significantly_better": significant and good,
            }
        )
        if significant and good:
            candidates.append((c.abs_lift if direction == "higher" else -c.abs_lift, name))
    evidence: dict[str, Any] = {
        "metric": metric["name"],
        "direction": direction,
        "phase": data.phase,
        "test": test,
        "alpha": experiment.significance_level,
        "correction": "holm" if len(rows) > 1 else None,
        "control": {
            "variant": control,
            "n": data.metric(metric, control).n,
            "mean": rounded(data.metric(metric, control).mean),
        },
        "variants": figures,
    }
    if not candidates:
        evidence["reason"] = (
            f"no variant is significantly better than {control!r} on {metric['name']!r} "
            f"({test} p-values at alpha {experiment.significance_level:g})"
        )
        return None, evidence
    return max(candidates)[1], evidence


@router.post("/api/experiments/{experiment}/promote", response_model=None, responses=answers(DecisionRead))
def promote(
    experiment: ExperimentPath, body: PromoteIn, request: Request, session: SessionDep
) -> dict[str, Any]:
    """Move the registry alias of the experiment's model to the winning variant's model version
    (the given `variant`, else the best one significantly better than control on the primary
    metric); the decision is recorded with its evidence and returned."""
    db = request.app.state.db
    # the evidence counts the accepted events (folded before this request's session begins)
    fold_for_read(
        db, request.app.state.settings.read_fold_seconds, request.app.state.settings.fold_chunk_events
    )
    with db.session(write=False) as reader:
        row = get_experiment(reader, experiment)
        canary_model = (row.config.get("canary") or {}).get("model_name")
        model = row.model_name or canary_model
        evidence: dict[str, Any] | None = None
        if body.variant is not None:
            names = [v["name"] for v in row.variants]
            if body.variant not in names:
                raise Unprocessable(
                    f"experiment {row.key!r} has no variant {body.variant!r}; it has {names}",
                    {"variant": body.variant, "variants": names},
                    code="UNKNOWN_VARIANT",
                )
            chosen: str | None = body.variant
        else:
            chosen, evidence = _pick(row, load_phase(reader, row), body.test)
        experiment_id, key = row.id, row.key
        variants = {v["name"]: v for v in row.variants}
    if not model:
        raise Unprocessable(
            f"experiment {key!r} has no model_name: there is no registry model to promote in",
            {"experiment": key},
            code="NO_MODEL_NAME",
        )
    if chosen is None:
        assert evidence is not None
        raise Conflict(evidence.get("reason", "no winner"), evidence, code="NO_WINNER")
    version = variants[chosen].get("model_version")
    if not version:
        raise Unprocessable(
            f"variant {chosen!r} of experiment {key!r} has no model_version",
            {"variant": chosen},
            code="NO_MODEL_VERSION",
        )
    move = {"model": model, "alias": body.alias, "version": str(version)}
    details: dict[str, Any] = {
        "variant": chosen,
        "chosen_by": "request" if body.variant is not None else "primary_metric",
    }
    if evidence is not None:
        details["evidence"] = evidence
    held = promotion.claim(db, experiment_id, move, details)  # 409 while another decision is in flight
    try:
        moved = _controller(request).registry.move_alias(
            model, body.alias, str(version), comment=f"A/B testing: experiment {key!r} promoted {chosen!r}"
        )
    except BaseException as exc:
        promotion.release(db, held)
        if isinstance(exc, RegistryError):
            raise _registry_failure(exc, move) from None
        raise
    decision = promotion.complete(session, held, moved)
    session.flush()
    return decision_json(decision)


def _registry_failure(exc: RegistryError, move: dict[str, str]) -> Exception:
    details = {**move, "registry": exc.to_dict()}
    if exc.retryable:
        return ServiceUnavailable(
            f"the model registry is unreachable: {exc.message}", details, code="REGISTRY_UNAVAILABLE"
        )
    return Unprocessable(
        f"the model registry refused to move {move['model']}@{move['alias']} to {move['version']}: "
        f"{exc.message}",
        details,
        code="REGISTRY_REJECTED",
    )


@router.post("/api/experiments/{experiment}/evaluate", response_model=None, responses=answers(EvaluationRead))
async def evaluate(experiment: ExperimentPath, request: Request, session: SessionDep) -> dict[str, Any]:
    """Run the rollout controller's check for this bandit or canary now (what the background loop
    does every `controller_interval_seconds`): the figures of the evaluation and the decisions it
    recorded."""
    controller = _controller(request)

    def work() -> dict[str, Any]:
        with request.app.state.db.session(write=False) as reader:
            row = get_experiment(reader, experiment)
            if row.mode not in ("bandit", "canary"):
                raise Conflict(
                    f"experiment {row.key!r} is an {row.mode!r} experiment: only bandits and canaries "
                    "are evaluated",
                    {"mode": row.mode},
                    code="NOT_A_ROLLOUT",
                )
        return controller.evaluate(experiment)

    return await run_in_threadpool(work)
