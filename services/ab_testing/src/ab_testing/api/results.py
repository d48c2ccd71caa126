"""`/api/experiments/{e}/results` and power analysis."""

from __future__ import annotations

import math
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from mlops_kit.deps import READ_ONLY, SessionDep
from mlops_kit.openapi import answers
from pydantic import BaseModel, ConfigDict, Field

from ab_testing.analysis import results
from ab_testing.api.answers import ExperimentPowerRead, PowerRead, ResultsRead
from ab_testing.deps import ExperimentDep, ExperimentPath
from ab_testing.errors import InvalidBaseline, InvalidPowerInput, StdRequired, UnknownMetric
from ab_testing.experiments import get_experiment
from ab_testing.folding import fold_for_read
from ab_testing.stats import minimum_detectable_effect, required_sample_size

router = APIRouter(tags=["analysis"])


@router.get("/api/experiments/{experiment}/results", response_model=None, responses=answers(ResultsRead))
def experiment_results(
    experiment: ExperimentPath,
    request: Request,
    session: SessionDep,
    phase: int | None = Query(default=None, ge=1, le=2**31 - 1, description="default: the current phase"),
    method: Literal["holm", "bh"] = Query(default="holm", description="multiple-testing correction"),
    sequential: bool = Query(default=True, description="always-valid p-values and confidence sequences"),
    mann_whitney: bool = Query(default=False, description="also a Mann-Whitney U test per comparison"),
) -> dict[str, Any]:
    """Per metric, every variant against the control: counts, means, lifts with intervals,
    p-values (corrected across variants x metrics), sequential and Bayesian figures, CUPED when
    covariates were sent, and the sample-ratio-mismatch check. Events accepted before the call
    are counted: pending ones are folded first (`pending_events`: how many a burst left for the
    folders after `read_fold_seconds`, normally 0)."""
    left = fold_for_read(
        request.app.state.db,
        request.app.state.settings.read_fold_seconds,
        request.app.state.settings.fold_chunk_events,
    )
    # loaded after the fold, which may wait: no connection is held meanwhile
    row = get_experiment(session, experiment)
    answer = results(
        session, row, phase=phase, method=method, sequential=sequential, with_mann_whitney=mann_whitney
    )
    answer["pending_events"] = left
    return answer


class PowerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric_type: Literal["binary", "continuous", "ratio"] = "binary"
    baseline_mean: float = Field(description="the control's expected mean (a rate for binary metrics)")
    std: float | None = Field(
        default=None, gt=0, description="per-user standard deviation (continuous, ratio)"
    )
    mde: float | None = Field(default=None, gt=0, description="minimum detectable effect")
    relative: bool = Field(default=True, description="the mde is relative to the baseline")
    n_per_variant: int | None = Field(
        default=None, ge=2, le=10**15, description="give this to get the MDE instead"
    )
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    variants: int = Field(default=2, ge=2, le=100)


def power_analysis(body: PowerIn) -> dict[str, Any]:
    if body.metric_type == "binary" and not 0 < body.baseline_mean < 1:
        raise InvalidBaseline("a binary baseline is a rate in (0, 1)")
    if body.metric_type != "binary" and body.std is None:
        raise StdRequired(f"a {body.metric_type} metric needs its per-user 'std'")
    out: dict[str, Any] = body.model_dump()
    try:
        if body.mde is not None:
            n = required_sample_size(
                body.metric_type,
                body.baseline_mean,
                body.mde,
                relative=body.relative,
                std=body.std,
                alpha=body.alpha,
                power=body.power,
                variants=body.variants,
            )
            out |= {"required_per_variant": n, "required_total": n * body.variants}
        if body.n_per_variant is not None:
            mde = minimum_detectable_effect(
                body.metric_type,
                body.baseline_mean,
                body.n_per_variant,
                relative=body.relative,
                std=body.std,
                alpha=body.alpha,
                power=body.power,
                variants=body.variants,
            )
            out["minimum_detectable_effect"] = None if not math.isfinite(mde) else mde
    except ValueError as exc:
        raise InvalidPowerInput(str(exc)) from None
    if body.mde is None and body.n_per_variant is None:
        raise InvalidPowerInput("give 'mde' (for a sample size) or 'n_per_variant' (for an MDE)")
    return out


@router.post("/api/power", openapi_extra=READ_ONLY, response_model=PowerRead)
def power(body: PowerIn) -> dict[str, Any]:
    """Required sample size per variant for an MDE, or the MDE a sample size can detect."""
    return power_analysis(body)


@router.get("/api/experiments/{experiment}/power", response_model=ExperimentPowerRead)
def experiment_power(
    row: ExperimentDep,
    baseline: float = Query(description="the control's expected mean"),
    std: float | None = Query(default=None, gt=0),
    metric: str | None = Query(default=None, max_length=100, description="default: the primary metric"),
    mde: float | None = Query(default=None, gt=0, description="default: the experiment's"),
    n_per_variant: int | None = Query(default=None, ge=2, le=10**15),
) -> dict[str, Any]:
    """The experiment's own significance level, power, variants and MDE, for one metric."""
    name = metric or row.primary_metric
    found = next((m for m in row.metrics if m["name"] == name), None)
    if found is None:
        raise UnknownMetric(f"experiment {row.key!r} has no metric {name!r}")
    body = PowerIn(
        metric_type=found["type"],
        baseline_mean=baseline,
        std=std,
        mde=mde if mde is not None else (row.minimum_detectable_effect if n_per_variant is None else None),
        n_per_variant=n_per_variant,
        alpha=row.significance_level,
        power=row.power,
        variants=len(row.variants),
    )
    return {"experiment": row.key, "metric": name, **power_analysis(body)}
