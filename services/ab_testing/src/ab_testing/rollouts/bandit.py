"""Multi-armed bandit: Thompson sampling re-weights the variants on a schedule after a burn-in.

``config["bandit"]``: ``burn_in_users`` (exposed users in the current phase, all arms together,
before the first update), ``update_seconds`` (between updates), ``min_weight`` (the floor of every
arm) and ``metric`` (default: the primary metric). State beside them: ``updates`` (how many so far)
and ``last_update_at``.

An update draws, for every arm, ``DRAWS`` samples from the posterior of the arm's mean
(binary: ``Beta(1 + successes, 1 + failures)``; continuous: ``N(mean, s²/n)``; ratio:
``N(Σnum/Σden, delta-method variance)``; an arm with fewer than 2 units borrows the pooled variance
of the others) and estimates each arm's probability of being the best (in the metric's direction)
as the share of draws it wins. Its weight is that probability, with every arm raised to
``min_weight`` and the rest shared in proportion among the others (weights sum to 1). The draws
are seeded from the experiment id and the update number: an update can be reproduced.

Weights change in place — the phase stays, so the arms' results accumulate across updates (the
decisions table keeps every weight vector with its posterior figures). Assignment is a stateless
hash, so as the weights move, users near the boundaries between the arms' bucket ranges change
arm; their events count for the arm of their first exposure in the phase. A sample-ratio check
against the current weights is therefore meaningless for a bandit's phase.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from ab_testing.experiments import record_decision
from ab_testing.rollouts import load_phase, metric_by_name, repository, rounded
from ab_testing.stats import MeanStats, RatioStats
from ab_testing.tables import Decision, Experiment, Status

DRAWS = 10_000


def draw_seed(experiment_id: str, update: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{experiment_id}:{update}".encode()).digest()[:8], "big")


def posteriors(metric_type: str, stats: Sequence[MeanStats | RatioStats]) -> list[dict[str, float]]:
    """Each arm's posterior of its mean: ``{"alpha", "beta"}`` (binary) or ``{"mean", "sd"}``."""
    if metric_type == "binary":
        out = []
        for s in stats:
            n = max(float(s.n), 0.0)
            total = s.sum if isinstance(s, MeanStats) else s.sum_num
            successes = min(max(float(total), 0.0), n)
            out.append({"alpha": 1.0 + successes, "beta": 1.0 + n - successes})
        return out
    means: list[float] = []
    variances: list[float | None] = []  # of the mean
    unit_vars: list[float] = []
    for s in stats:
        if isinstance(s, RatioStats):
            means.append(s.ratio)
            ok = s.n >= 2 and s.sum_den != 0
            variances.append(s.variance_of_ratio if ok else None)
            if ok:
                unit_vars.append(s.variance_of_ratio * s.n)
        else:
            means.append(s.mean)
            variances.append(s.variance / s.n if s.n >= 2 else None)
            if s.n >= 2:
                unit_vars.append(s.variance)
    pooled_unit = float(np.mean(unit_vars)) if unit_vars else 1.0
    with_data = [m for m, s in zip(means, stats, strict=True) if s.n > 0]
    pooled_mean = float(np.mean(with_data)) if with_data else 0.0
    out = []
    for mean, var, s in zip(means, variances, stats, strict=True):
        if s.n <= 0:
            mean, var = pooled_mean, pooled_unit  # as wide as one unit
        elif var is None:
            var = pooled_unit / max(float(s.n), 1.0)
        out.append({"mean": mean, "sd": math.sqrt(max(var, 1e-300))})
    return out


def probability_best(
    metric_type: str, posts: list[dict[str, float]], direction: str, *, seed: int, draws: int = DRAWS
) -> list[float]:
    """Share of joint posterior draws in which each arm is the best (ties: the first such arm)."""
    rng = np.random.default_rng(seed)
    if metric_type == "binary":
        samples = np.stack([rng.beta(p["alpha"], p["beta"], size=draws) for p in posts])
    else:
        samples = np.stack([rng.normal(p["mean"], p["sd"], size=draws) for p in posts])
    best = samples.argmin(axis=0) if direction == "lower" else samples.argmax(axis=0)
    counts = np.bincount(best, minlength=len(posts))
    return [float(c) / draws for c in counts]


def floor_weights(probabilities: Sequence[float], floor: float) -> list[float]:
    """Weights proportional to ``probabilities`` with every arm at least ``floor``: arms below it
    are raised to it and the rest is shared in proportion among the others (repeated until no arm
    is below). Equal weights when the floors alone would take everything."""
    k = len(probabilities)
    if k == 0:
        return []
    if floor * k >= 1.0:
        return [1.0 / k] * k
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, None)
    if p.sum() <= 0:
        p = np.ones(k)
    p = p / p.sum()
    fixed = np.zeros(k, dtype=bool)
    weights = p.copy()
    for _ in range(k):
        free = ~fixed
        budget = 1.0 - floor * fixed.sum()
        mass = p[free].sum()
        weights[free] = p[free] / mass * budget if mass > 0 else budget / free.sum()
        weights[fixed] = floor
        low = free & (weights < floor)
        if not low.any():
            break
        fixed |= low
    weights[fixed] = floor
    return [float(w) for w in weights]


def rounded_weights(weights: Sequence[float]) -> list[float]:
    """Six decimals, the rounding put on the largest arm so they still sum to 1."""
    out = [round(w, 6) for w in weights]
    i = max(range(len(out)), key=lambda j: out[j])
    out[i] = round(out[i] + 1.0 - sum(out), 6)
    return out


def config(experiment: Experiment) -> dict[str, Any]:
    return dict(experiment.config.get("bandit") or {})


def step(session: Session, experiment: Experiment, now: datetime) -> Decision | None:
    """Re-weight a running bandit if it is due (caller's transaction); the decision, or None."""
    bandit = config(experiment)
    if experiment.status != Status.RUNNING or experiment.mode != "bandit":
        return None
    metric = metric_by_name(experiment, bandit.get("metric") or experiment.primary_metric)
    if metric is None:
        return None
    last = bandit.get("last_update_at")
    if last and (now - datetime.fromisoformat(last)).total_seconds() < float(
        bandit.get("update_seconds", 3600)
    ):
        return None
    data = load_phase(session, experiment)
    exposed = sum(data.exposures.get(v["name"], 0) for v in experiment.variants)
    if exposed < int(bandit.get("burn_in_users", 1000)):
        return None

    update = int(bandit.get("updates", 0)) + 1
    seed = draw_seed(experiment.id, update)
    direction = metric.get("direction", "higher")
    names = [v["name"] for v in experiment.variants]
    stats = [data.metric(metric, n) for n in names]
    posts = posteriors(metric["type"], stats)
    p_best = probability_best(metric["type"], posts, direction, seed=seed)
    floor = float(bandit.get("min_weight", 0.05))
    weights = rounded_weights(floor_weights(p_best, floor))
    before = [v["weight"] for v in experiment.variants]

    arms = []
    for name, s, post, p, w0, w1 in zip(names, stats, posts, p_best, before, weights, strict=True):
        arms.append(
            {
                "variant": name,
                "n": s.n,
                "exposed": data.exposures.get(name, 0),
                "mean": rounded(s.mean),
                "posterior": {k: rounded(v) for k, v in post.items()},
                "p_best": rounded(p),
                "weight_before": w0,
                "weight_after": w1,
            }
        )
    details = {
        "metric": metric["name"],
        "type": metric["type"],
        "direction": direction,
        "update": update,
        "seed": seed,
        "draws": DRAWS,
        "min_weight": floor,
        "exposed_users": exposed,
        "burn_in_users": int(bandit.get("burn_in_users", 1000)),
        "arms": arms,
        "weights": dict(zip(names, weights, strict=True)),
    }
    decision = record_decision(session, experiment, "reweight", details)
    variants = [{**v, "weight": w} for v, w in zip(experiment.variants, weights, strict=True)]
    experiment.variants = variants
    experiment.updated_at = now
    phase = repository.phase(session, experiment.id, experiment.phase)
    if phase is not None:
        phase.variants = variants  # the phase keeps going with the current weights
    bandit.update(updates=update, last_update_at=now.isoformat())
    experiment.config = {**experiment.config, "bandit": bandit}
    return decision
