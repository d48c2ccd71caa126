"""Power analysis vs statsmodels, and the computed sample size reaching the requested power in simulation.

Oracles: binary — statsmodels' ``samplesize_proportions_2indep_onetail`` / ``power_proportions_2indep``
(the same normal approximation: pooled variance under H0, unpooled under H1) and, loosely, Cohen's-h
``NormalIndPower``; continuous — ``NormalIndPower`` with effect size delta/sigma (exact)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_testing.stats import (
    MeanStats,
    compare,
    minimum_detectable_effect,
    required_sample_size,
    statistical_power,
)
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    proportion_effectsize,
    samplesize_proportions_2indep_onetail,
)


@pytest.mark.parametrize(
    ("baseline", "mde", "alpha", "power"),
    [(0.1, 0.1, 0.05, 0.8), (0.1, 0.02, 0.05, 0.8), (0.03, 0.2, 0.01, 0.9), (0.5, -0.05, 0.05, 0.8)],
)
def test_binary_sample_size_vs_statsmodels(baseline: float, mde: float, alpha: float, power: float) -> None:
    n = required_sample_size("binary", baseline, mde, alpha=alpha, power=power)
    diff = baseline * mde
    expected = samplesize_proportions_2indep_onetail(diff, baseline, power, alpha=alpha)
    assert n == math.ceil(expected - 1e-9)
    # Cohen's h (arcsine) approximation lands within a few percent
    h = proportion_effectsize(baseline + diff, baseline)
    cohen = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power)
    assert n == pytest.approx(cohen, rel=0.03)
    # absolute effects give the same answer
    assert required_sample_size("binary", baseline, diff, relative=False, alpha=alpha, power=power) == n


@pytest.mark.parametrize(("std", "mde", "alpha", "power"), [(1.0, 0.1, 0.05, 0.8), (25.0, 2.0, 0.01, 0.9)])
def test_continuous_sample_size_and_mde_vs_normal_ind_power(
    std: float, mde: float, alpha: float, power: float
) -> None:
    n = required_sample_size("continuous", 100.0, mde, relative=False, std=std, alpha=alpha, power=power)
    expected = NormalIndPower().solve_power(effect_size=mde / std, alpha=alpha, power=power)
    assert n == math.ceil(expected - 1e-9)
    mde_back = minimum_detectable_effect(
        "continuous", 100.0, expected, relative=False, std=std, alpha=alpha, power=power
    )
    # statsmodels counts the far tail too and solves numerically: agreement to ~1e-6
    assert mde_back == pytest.approx(mde, rel=1e-5)
    es = NormalIndPower().solve_power(nobs1=n, alpha=alpha, power=power)
    mde_rel = minimum_detectable_effect("continuous", 100.0, n, std=std, alpha=alpha, power=power)
    assert mde_rel == pytest.approx(es * std / 100.0, rel=1e-5)
    # exactly the closed form
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    assert mde_rel * 100.0 == pytest.approx(z * std * math.sqrt(2 / n), rel=1e-12)
    # ratio metrics use the same formula with the linearized per-unit std
    assert required_sample_size("ratio", 100.0, mde, relative=False, std=std, alpha=alpha, power=power) == n


def test_binary_mde_inverts_the_sample_size() -> None:
    n = 20_000
    mde = minimum_detectable_effect("binary", 0.1, n)
    diff = 0.1 * mde
    assert samplesize_proportions_2indep_onetail(diff, 0.1, 0.8, alpha=0.05) == pytest.approx(n, rel=1e-9)
    # the two-sided power (both tails) at the MDE is the requested power (plus a negligible far tail)
    pw = power_proportions_2indep(diff, 0.1, n, alpha=0.05, return_results=False)
    assert pw == pytest.approx(0.8, abs=1e-6)
    assert statistical_power("binary", 0.1, mde, n) == pytest.approx(0.8, abs=1e-9)
    assert minimum_detectable_effect("binary", 0.1, n, relative=False) == pytest.approx(diff)


def test_more_variants_split_alpha() -> None:
    two = required_sample_size("binary", 0.1, 0.1)
    three = required_sample_size("binary", 0.1, 0.1, variants=3)
    assert three == required_sample_size("binary", 0.1, 0.1, alpha=0.025)
    assert three > two


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        required_sample_size("continuous", 10.0, 0.1)  # std needed
    with pytest.raises(ValueError):
        required_sample_size("binary", 0.1, 0.0)
    with pytest.raises(ValueError):
        required_sample_size("binary", 0.95, 0.1)  # 1.045 is not a proportion
    with pytest.raises(ValueError):
        minimum_detectable_effect("binary", 0.1, 3)  # no effect is detectable
    with pytest.raises(ValueError):
        required_sample_size("binary", 0.1, 0.1, power=1.0)


def band(rate: float, trials: int, level: float = 0.999) -> tuple[float, float]:
    lo, hi = sps.binom.interval(level, trials, rate)
    return lo / trials, hi / trials


def test_simulated_power_at_the_computed_binary_sample_size() -> None:
    rng = np.random.default_rng(42)
    baseline, mde, sims = 0.1, 0.1, 2000
    n = required_sample_size("binary", baseline, mde)
    sc = rng.binomial(n, baseline, sims)
    st = rng.binomial(n, baseline * (1 + mde), sims)
    rejected = [
        compare("binary", MeanStats(n, a, a), MeanStats(n, b, b), sequential=False, bayesian=False).better
        for a, b in zip(sc, st, strict=True)
    ]
    lo, hi = band(0.8, sims)
    assert lo <= np.mean(rejected) <= hi


def test_simulated_power_at_the_computed_continuous_sample_size() -> None:
    rng = np.random.default_rng(43)
    std, delta, sims = 3.0, 0.25, 2000
    n = required_sample_size("continuous", 10.0, delta, relative=False, std=std)
    # exact sufficient statistics of normal samples: mean ~ N, (n-1)s²/σ² ~ χ²(n-1)
    stats = []
    for mu in (10.0, 10.0 + delta):
        mean = rng.normal(mu, std / math.sqrt(n), sims)
        var = std**2 * rng.chisquare(n - 1, sims) / (n - 1)
        stats.append((n * mean, (n - 1) * var + n * mean**2))
    rejected = [
        compare(
            "continuous", MeanStats(n, sc, qc), MeanStats(n, st, qt), sequential=False, bayesian=False
        ).better
        for sc, qc, st, qt in zip(*stats[0], *stats[1], strict=True)
    ]
    lo, hi = band(0.8, sims)
    assert lo <= np.mean(rejected) <= hi
