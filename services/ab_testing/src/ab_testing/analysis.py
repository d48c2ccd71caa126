"""Results of an experiment phase, from the sufficient statistics only (no raw event scan).

Every metric x non-control variant is compared with the control (frequentist test, lift and
intervals, sequential always-valid p-value and confidence sequence, Bayesian chance to win and
expected loss, CUPED when covariates exist); p-values are corrected across the whole family
(Holm or Benjamini-Hochberg); the sample ratio is checked against the phase's weights.
Zero-filled metrics (binary by default) count every exposed user: n is the exposure count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlops_kit.errors import NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from ab_testing.experiments import control_name
from ab_testing.folding import user_values
from ab_testing.routing import exposure_counts
from ab_testing.stats import (
    Comparison,
    MeanStats,
    RatioStats,
    apply_correction,
    compare,
    cuped_theta,
    mann_whitney,
    pooled_covariate_mean,
    srm_check,
)
from ab_testing.tables import Experiment, MetricStats, Phase, UserMetric


def metric_stats(session: Session, experiment: Experiment, phase: int) -> dict[tuple[str, str], MetricStats]:
    rows = session.scalars(
        select(MetricStats).where(MetricStats.experiment_id == experiment.id, MetricStats.phase == phase)
    ).all()
    return {(r.variant, r.metric): r for r in rows}


def variant_stats(metric: dict[str, Any], row: MetricStats | None, exposed: int) -> MeanStats | RatioStats:
    if metric["type"] == "ratio":
        if row is None:
            return RatioStats()
        return RatioStats(
            n=row.n,
            sum_num=row.sum,
            sum_den=row.sum_den,
            sum_num_sq=row.sum_sq,
            sum_den_sq=row.sum_den_sq,
            sum_num_den=row.sum_num_den,
        )
    if row is None:
        return MeanStats(n=exposed if metric.get("zero_fill") else 0)
    n = max(exposed, row.n) if metric.get("zero_fill") else row.n
    return MeanStats(
        n=n,
        sum=row.sum,
        sum_sq=row.sum_sq,
        n_cov=row.n_cov,
        sum_x=row.sum_x,
        sum_x_sq=row.sum_x_sq,
        sum_xy=row.sum_xy,
    )


def phase_row(session: Session, experiment: Experiment, phase: int) -> Phase:
    row = session.scalar(select(Phase).where(Phase.experiment_id == experiment.id, Phase.number == phase))
    if row is None:
        raise NotFound(
            f"experiment {experiment.key!r} has no phase {phase}", {"phase": phase}, code="PHASE_NOT_FOUND"
        )
    return row


def comparisons_for(
    session: Session,
    experiment: Experiment,
    phase: int,
    metrics: list[dict[str, Any]],
    *,
    sequential: bool = True,
) -> tuple[list[tuple[str, str, Comparison | None, str | None]], dict[str, int], list[dict[str, Any]]]:
    """(metric, variant, comparison or None, why not) for every metric x non-control variant."""
    variants = phase_row(session, experiment, phase).variants
    control = control_name(variants)
    exposures = exposure_counts(session, experiment.id, phase)
    rows = metric_stats(session, experiment, phase)
    out: list[tuple[str, str, Comparison | None, str | None]] = []
    for metric in metrics:
        every = {
            v["name"]: variant_stats(
                metric, rows.get((v["name"], metric["name"])), exposures.get(v["name"], 0)
            )
            for v in variants
        }
        c_stats = every[control]
        theta: float | None = None
        covariate_mean: float | None = None
        means = [s for s in every.values() if isinstance(s, MeanStats) and s.n_cov > 0]
        if len(means) == len(every) and len(means) > 2:
            # CUPED with one slope and one covariate mean over all the variants
            theta = cuped_theta(*means)
            covariate_mean = pooled_covariate_mean(*means) if theta is not None else None
        for v in variants:
            if v["name"] == control:
                continue
            t_stats = variant_stats(
                metric, rows.get((v["name"], metric["name"])), exposures.get(v["name"], 0)
            )
            try:
                result = compare(
                    metric["type"],
                    c_stats,
                    t_stats,
                    alpha=experiment.significance_level,
                    direction=metric.get("direction", "higher"),
                    sequential=sequential,
                    theta=theta,
                    covariate_mean=covariate_mean,
                )
                out.append((metric["name"], v["name"], result, None))
            except (ValueError, ZeroDivisionError) as exc:
                out.append((metric["name"], v["name"], None, str(exc)))
    return out, exposures, variants


def results(
    session: Session,
    experiment: Experiment,
    *,
    phase: int | None = None,
    method: str = "holm",
    sequential: bool = True,
    with_mann_whitney: bool = False,
) -> dict[str, Any]:
    number = phase or experiment.phase
    found, exposures, variants = comparisons_for(
        session, experiment, number, experiment.metrics, sequential=sequential
    )
    control = control_name(variants)
    done = [c for _, _, c, _ in found if c is not None]
    corrected = iter(apply_correction(done, method) if done else [])
    by_metric: dict[str, list[dict[str, Any]]] = {m["name"]: [] for m in experiment.metrics}
    for metric_name, variant, comparison, why in found:
        if comparison is None:
            by_metric[metric_name].append({"variant": variant, "error": why})
            continue
        entry = {"variant": variant, **next(corrected).to_dict()}
        if with_mann_whitney:
            entry["mann_whitney"] = _mann_whitney(session, experiment, number, metric_name, control, variant)
        by_metric[metric_name].append(entry)
    counts = [exposures.get(v["name"], 0) for v in variants]
    srm: dict[str, Any] | None = None
    if experiment.mode == "bandit":
        # a bandit moves its weights within the phase: there is no fixed ratio to check against
        srm = {"skipped": "bandit weights change during the phase"}
    elif sum(counts):
        srm = srm_check(counts, [v["weight"] for v in variants]).to_dict()
    return {
        "experiment": experiment.key,
        "status": experiment.status,
        "phase": number,
        "control": control,
        "correction": method,
        "variants": [
            {
                "name": v["name"],
                "weight": v["weight"],
                "model_version": v.get("model_version"),
                "exposures": exposures.get(v["name"], 0),
            }
            for v in variants
        ],
        "sample_ratio_mismatch": srm,
        "metrics": [
            {
                "name": m["name"],
                "type": m["type"],
                "direction": m.get("direction", "higher"),
                "primary": m["name"] == experiment.primary_metric,
                "guardrail": m["name"] in (experiment.guardrail_metrics or []),
                "comparisons": by_metric[m["name"]],
            }
            for m in experiment.metrics
        ],
    }


def _mann_whitney(
    session: Session, experiment: Experiment, phase: int, metric: str, control: str, variant: str
) -> dict[str, Any] | None:
    definition = next((m for m in experiment.metrics if m["name"] == metric), None)
    if definition is None or definition["type"] == "ratio":
        return None

    def values(name: str) -> np.ndarray:
        rows = session.execute(
            select(UserMetric.total, UserMetric.events).where(
                UserMetric.experiment_id == experiment.id,
                UserMetric.phase == phase,
                UserMetric.metric == metric,
                UserMetric.variant == name,
                UserMetric.events > 0,
            )
        ).all()
        columns = np.array(rows, dtype=np.float64).reshape(-1, 2)
        return user_values(definition, columns[:, 0], columns[:, 1])

    result = mann_whitney(values(control), values(variant))
    return {k: getattr(result, k) for k in result.__dataclass_fields__}
