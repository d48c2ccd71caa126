"""Automatic rollouts: Thompson-sampling bandits and canary releases, driven by a background
controller; the promote endpoint moves a registry alias to a winner.

- ``controller``: the periodic loop (and ``evaluate_one`` for the evaluate endpoint);
- ``canary``: staged traffic, one-sided sequential guardrail tests, rollback / advance / promote;
- ``bandit``: Thompson sampling re-weighting after a burn-in, with a floor per arm;
- ``registry``: the model registry's aliases as rollouts use them;
- ``promotion``: one alias decision at a time per experiment (claim, move, complete or release);
- ``service``: the promote and evaluate requests (winner selection, the alias move), framework-free;
- ``repository``: every SQL statement of the rollouts; ``router``: the HTTP routes.

This module holds what they share: the per-variant sufficient statistics of one phase, read from
``metric_stats`` (zero-filled metrics count every exposed user: ``n`` = exposures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ab_testing.rollouts import repository
from ab_testing.routing import exposure_counts
from ab_testing.stats import MeanStats, RatioStats
from ab_testing.tables import Experiment


@dataclass(frozen=True)
class PhaseData:
    """One phase's exposures per variant and sufficient statistics per metric and variant."""

    phase: int
    exposures: dict[str, int]
    stats: dict[str, dict[str, MeanStats | RatioStats]]

    def metric(self, metric: dict[str, Any], variant: str) -> MeanStats | RatioStats:
        found = self.stats.get(metric["name"], {}).get(variant)
        if found is None:
            found = RatioStats() if metric["type"] == "ratio" else MeanStats()
        if metric["type"] != "ratio" and metric.get("zero_fill"):
            assert isinstance(found, MeanStats)
            exposed = self.exposures.get(variant, 0)
            if exposed > found.n:
                # users exposed without an event count as 0 (Σ and Σ² are unchanged)
                found = MeanStats(exposed, found.sum, found.sum_sq, found.n_cov, found.sum_x,
                                  found.sum_x_sq, found.sum_xy)  # fmt: skip
        return found


def load_phase(session: Session, experiment: Experiment, phase: int | None = None) -> PhaseData:
    number = experiment.phase if phase is None else phase
    types = {m["name"]: m["type"] for m in experiment.metrics}
    rows = repository.metric_stats(session, experiment.id, number)
    stats: dict[str, dict[str, MeanStats | RatioStats]] = {}
    for r in rows:
        kind = types.get(r.metric)
        if kind is None:
            continue
        value: MeanStats | RatioStats
        if kind == "ratio":
            value = RatioStats(r.n, r.sum, r.sum_den, r.sum_sq, r.sum_den_sq, r.sum_num_den)
        else:
            value = MeanStats(r.n, r.sum, r.sum_sq, r.n_cov, r.sum_x, r.sum_x_sq, r.sum_xy)
        stats.setdefault(r.metric, {})[r.variant] = value
    return PhaseData(number, exposure_counts(session, experiment.id, number), stats)


def metric_by_name(experiment: Experiment, name: str | None) -> dict[str, Any] | None:
    return next((m for m in experiment.metrics if m["name"] == name), None) if name else None


def rounded(value: float | None, digits: int = 6) -> float | None:
    """For evidence: a finite float to ``digits`` significant digits (JSON has no NaN/inf: None)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")
