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
from sqlalchemy.orm import Session

from ab_testing import analysis_repository as repo
from ab_testing.errors import PhaseNotFound
from ab_testing.experiments import control_name
from ab_testing.folding_columns import user_values
from ab_testing.routing_repository import exposure_counts
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
from ab_testing.tables import Experiment, MetricStats, Phase


def metric_stats(session: Session, experiment: Experiment, phase: int) -> dict[tuple[str, str], MetricStats]:
    return {(r.variant, r.metric): r for r in repo.metric_stats_rows(session, experiment.id, phase)}


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
    row = repo.phase(session, experiment.id, phase)
    if row is None:
        raise PhaseNotFound(f"experiment {experiment.key!r} has no phase {phase}", {"phase": phase})
    return row


Found = tuple[str, str, Comparison | None, str | None]  # metric, variant, comparison, why not


def comparisons_for(
    session: Session,
    experiment: Experiment,
    phase: int,
    metrics: list[dict[str, Any]],
    *,
    sequential: bool = True,
) -> tuple[list[Found], dict[str, int], list[dict[str, Any]]]:
    """(metric, variant, comparison or None, why not) for every metric x non-control variant."""
    variants = phase_row(session, experiment, phase).variants
    control = control_name(variants)
    exposures = exposure_counts(session, experiment.id, phase)
    rows = metric_stats(session, experiment, phase)
    out: list[Found] = []
    for metric in metrics:
        every = {
            v["name"]: variant_stats(
                metric, rows.get((v["name"], metric["name"])), exposures.get(v["name"], 0)
            )
            for v in variants
        }
        theta, covariate_mean = _pooled_cuped(every)
        for v in variants:
            if v["name"] == control:
                continue
            t_stats = variant_stats(
                metric, rows.get((v["name"], metric["name"])), exposures.get(v["name"], 0)
            )
            out.append(
                _compared(
                    experiment, metric, v["name"], every[control], t_stats, sequential, theta, covariate_mean
                )
            )
    return out, exposures, variants


def _pooled_cuped(every: dict[str, MeanStats | RatioStats]) -> tuple[float | None, float | None]:
    """CUPED with one slope and one covariate mean over all the variants, when all have
    covariates and there are more than two of them (else each pair pools its own)."""
    theta: float | None = None
    covariate_mean: float | None = None
    means = [s for s in every.values() if isinstance(s, MeanStats) and s.n_cov > 0]
    if len(means) == len(every) and len(means) > 2:
        theta = cuped_theta(*means)
        covariate_mean = pooled_covariate_mean(*means) if theta is not None else None
    return theta, covariate_mean


def _compared(
    experiment: Experiment,
    metric: dict[str, Any],
    variant: str,
    c_stats: MeanStats | RatioStats,
    t_stats: MeanStats | RatioStats,
    sequential: bool,
    theta: float | None,
    covariate_mean: float | None,
) -> Found:
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
        return (metric["name"], variant, result, None)
    except (ValueError, ZeroDivisionError) as exc:
        return (metric["name"], variant, None, str(exc))


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
    by_metric = _by_metric(session, experiment, number, found, control, method, with_mann_whitney)
    return {
        "experiment": experiment.key,
        "status": experiment.status,
        "phase": number,
        "control": control,
        "correction": method,
        "variants": _variants_json(variants, exposures),
        "sample_ratio_mismatch": _srm(experiment, variants, exposures),
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


def _variants_json(variants: list[dict[str, Any]], exposures: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {
            "name": v["name"],
            "weight": v["weight"],
            "model_version": v.get("model_version"),
            "exposures": exposures.get(v["name"], 0),
        }
        for v in variants
    ]


def _by_metric(
    session: Session,
    experiment: Experiment,
    number: int,
    found: list[Found],
    control: str,
    method: str,
    with_mann_whitney: bool,
) -> dict[str, list[dict[str, Any]]]:
    """Each metric's comparisons as JSON, p-values corrected over the whole family."""
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
    return by_metric


def _srm(
    experiment: Experiment, variants: list[dict[str, Any]], exposures: dict[str, int]
) -> dict[str, Any] | None:
    if experiment.mode == "bandit":
        # a bandit moves its weights within the phase: there is no fixed ratio to check against
        return {"skipped": "bandit weights change during the phase"}
    counts = [exposures.get(v["name"], 0) for v in variants]
    if sum(counts):
        return srm_check(counts, [v["weight"] for v in variants]).to_dict()
    return None


def _mann_whitney(
    session: Session, experiment: Experiment, phase: int, metric: str, control: str, variant: str
) -> dict[str, Any] | None:
    definition = next((m for m in experiment.metrics if m["name"] == metric), None)
    if definition is None or definition["type"] == "ratio":
        return None

    def values(name: str) -> np.ndarray:
        rows = repo.user_totals(session, experiment.id, phase, metric, name)
        columns = np.array(rows, dtype=np.float64).reshape(-1, 2)
        return user_values(definition, columns[:, 0], columns[:, 1])

    result = mann_whitney(values(control), values(variant))
    return {k: getattr(result, k) for k in result.__dataclass_fields__}
