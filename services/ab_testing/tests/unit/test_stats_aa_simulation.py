"""A/A simulations: 1,000 experiments (2 x 500 users) per metric type; the tests reject at about the
nominal rate (inside the binomial 99.9% band around alpha). Simulated per experiment as sufficient
statistics (vectorized), then analysed with compare()."""

from __future__ import annotations

import numpy as np
import pytest
from ab_testing.stats import MeanStats, RatioStats, compare, srm_check
from scipy import stats as sps

EXPERIMENTS = 1000
USERS = 500
ALPHA = 0.05


def nominal_band(rate: float = ALPHA, trials: int = EXPERIMENTS) -> tuple[float, float]:
    lo, hi = sps.binom.interval(0.999, trials, rate)
    return lo / trials, hi / trials


def rejection_rate(pairs: list[tuple[MeanStats | RatioStats, MeanStats | RatioStats]], kind: str) -> float:
    p = [compare(kind, c, t, alpha=ALPHA, sequential=False, bayesian=False).p_value for c, t in pairs]
    return float(np.mean(np.array(p, dtype=float) < ALPHA))


def test_aa_binary_rejects_at_nominal_rate() -> None:
    rng = np.random.default_rng(100)
    successes = rng.binomial(USERS, 0.1, (EXPERIMENTS, 2))
    pairs: list[tuple[MeanStats | RatioStats, MeanStats | RatioStats]] = [
        (MeanStats(USERS, a, a), MeanStats(USERS, b, b)) for a, b in successes
    ]
    lo, hi = nominal_band()
    assert lo <= rejection_rate(pairs, "binary") <= hi


@pytest.mark.parametrize("distribution", ["normal", "lognormal"])
def test_aa_continuous_rejects_at_nominal_rate(distribution: str) -> None:
    rng = np.random.default_rng(101)
    if distribution == "normal":
        values = rng.normal(20.0, 5.0, (EXPERIMENTS, 2, USERS))
    else:  # skewed, revenue-like
        values = rng.lognormal(2.0, 1.0, (EXPERIMENTS, 2, USERS))
    sums, squares = values.sum(axis=2), (values**2).sum(axis=2)
    pairs: list[tuple[MeanStats | RatioStats, MeanStats | RatioStats]] = [
        (MeanStats(USERS, s[0], q[0]), MeanStats(USERS, s[1], q[1]))
        for s, q in zip(sums, squares, strict=True)
    ]
    lo, hi = nominal_band()
    assert lo <= rejection_rate(pairs, "continuous") <= hi


def test_aa_continuous_with_cuped_rejects_at_nominal_rate() -> None:
    rng = np.random.default_rng(102)
    x = rng.gamma(2.0, 10.0, (EXPERIMENTS, 2, USERS))
    y = 5 + 0.8 * x + rng.normal(0, 8, x.shape)
    pairs: list[tuple[MeanStats | RatioStats, MeanStats | RatioStats]] = []
    for e in range(EXPERIMENTS):
        arms = [
            MeanStats(
                USERS,
                y[e, a].sum(),
                y[e, a] @ y[e, a],
                USERS,
                x[e, a].sum(),
                x[e, a] @ x[e, a],
                x[e, a] @ y[e, a],
            )
            for a in (0, 1)
        ]
        pairs.append((arms[0], arms[1]))
    assert compare("continuous", *pairs[0]).test == "cuped_welch_t"
    lo, hi = nominal_band()
    assert lo <= rejection_rate(pairs, "continuous") <= hi


def test_aa_ratio_rejects_at_nominal_rate() -> None:
    rng = np.random.default_rng(103)
    views = rng.poisson(5, (EXPERIMENTS, 2, USERS)) + 1
    clicks = rng.binomial(views, 0.1).astype(float)
    views = views.astype(float)
    agg = np.stack(
        [clicks.sum(2), views.sum(2), (clicks**2).sum(2), (views**2).sum(2), (clicks * views).sum(2)], axis=-1
    )
    pairs: list[tuple[MeanStats | RatioStats, MeanStats | RatioStats]] = [
        (RatioStats(USERS, *agg[e, 0]), RatioStats(USERS, *agg[e, 1])) for e in range(EXPERIMENTS)
    ]
    lo, hi = nominal_band()
    assert lo <= rejection_rate(pairs, "ratio") <= hi


def test_aa_bayesian_chance_to_win_is_uniform() -> None:
    """Under A/A the chance to win is ~uniform: > 95% in about 5% of experiments."""
    rng = np.random.default_rng(104)
    successes = rng.binomial(USERS, 0.1, (EXPERIMENTS, 2))
    wins = [
        compare("binary", MeanStats(USERS, a, a), MeanStats(USERS, b, b), sequential=False).bayesian
        for a, b in successes
    ]
    high = np.mean([w is not None and w.chance_to_win > 0.95 for w in wins])
    lo, hi = nominal_band()
    assert lo <= high <= hi


def test_srm_check_false_alarm_rate() -> None:
    """Correct 50/50 assignment: flagged (p < 0.001) in about 0.1% of experiments."""
    rng = np.random.default_rng(105)
    first = rng.binomial(10_000, 0.5, EXPERIMENTS)
    flagged = np.mean([srm_check([a, 10_000 - a], [0.5, 0.5]).flagged for a in first])
    assert flagged <= nominal_band(0.001)[1]
    assert srm_check([5300, 4700], [0.5, 0.5]).flagged
