"""mSPRT: the formulas against a numerical mixture integral, and error control under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_testing.stats import MeanStats, always_valid_p_value, compare, confidence_sequence, mixing_variance
from ab_testing.stats import sequential as seq
from scipy import integrate
from scipy import stats as sps


def mixture_lr_by_quadrature(d: float, v: float, tau2: float, null: float = 0.0) -> float:
    """∫ N(d; δ, V) N(δ; null, τ²) dδ / N(d; null, V), integrated numerically."""
    tau = math.sqrt(tau2)

    def integrand(delta: float) -> float:
        return sps.norm.pdf(d, delta, math.sqrt(v)) * sps.norm.pdf(delta, null, tau)

    span = 12 * max(tau, math.sqrt(v))
    num, _ = integrate.quad(integrand, null - span, null + span, points=[d, null], limit=200)
    return num / sps.norm.pdf(d, null, math.sqrt(v))


@pytest.mark.parametrize(("d", "v", "tau2"), [(0.01, 1e-5, 4e-5), (0.3, 0.02, 0.5), (-0.05, 4e-4, 1e-4)])
def test_p_value_and_confidence_sequence_vs_quadrature(d: float, v: float, tau2: float) -> None:
    lr = mixture_lr_by_quadrature(d, v, tau2)
    assert always_valid_p_value(d, v, tau2) == pytest.approx(min(1.0, 1 / lr), rel=1e-6)
    lo, hi = confidence_sequence(d, v, tau2, 0.05)
    # the sequence's ends are where the mixture likelihood ratio crosses 1/alpha
    assert mixture_lr_by_quadrature(d, v, tau2, null=lo) == pytest.approx(20.0, rel=1e-6)
    assert mixture_lr_by_quadrature(d, v, tau2, null=hi) == pytest.approx(20.0, rel=1e-6)
    # consistent with the p-value: 0 outside the sequence <=> p < alpha
    assert (lo > 0 or hi < 0) == (always_valid_p_value(d, v, tau2) < 0.05)


def test_mixing_variance_makes_the_sequence_narrowest_at_the_planned_size() -> None:
    alpha, unit_var, planned = 0.05, 2.0, 5000
    tau2 = mixing_variance(unit_var, planned, alpha)
    assert seq.optimal_ratio(0.05) == pytest.approx(2 * math.log(20) + math.log1p(seq.optimal_ratio(0.05)))
    v_planned = unit_var / planned

    def width(t2: float) -> float:
        return seq.confidence_sequence_half_width(v_planned, t2, alpha)

    assert width(tau2) < width(tau2 * 0.8) and width(tau2) < width(tau2 * 1.25)
    # wider than the fixed-horizon interval at the planned size, but by a bounded factor
    assert 1.3 < width(tau2) / (1.96 * math.sqrt(v_planned)) < 1.7


def test_compare_reports_sequential_results() -> None:
    rng = np.random.default_rng(0)
    yc, yt = rng.normal(0, 1, 2000), rng.normal(0.3, 1, 2000)
    c = compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), sequential_n=2000)
    assert c.sequential is not None and c.std_error is not None and c.abs_lift_ci is not None
    s = c.sequential
    tau2 = mixing_variance(yc.var(ddof=1) + yt.var(ddof=1), 2000, 0.05)
    assert s.tau == pytest.approx(math.sqrt(tau2))
    assert s.planned_n == 2000
    assert s.p_value == pytest.approx(always_valid_p_value(c.abs_lift, c.std_error**2, tau2))
    assert s.significant and s.p_value >= c.p_value  # always valid costs some power
    assert s.ci[0] < c.abs_lift_ci[0] and s.ci[1] > c.abs_lift_ci[1]
    fixed = compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), sequential_tau=0.1)
    assert fixed.sequential is not None and fixed.sequential.tau == 0.1 and fixed.sequential.planned_n is None
    assert (
        compare(
            "continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), sequential=False
        ).sequential
        is None
    )
    with pytest.raises(ValueError):
        compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), sequential_tau=0.0)


def peeking(seed: int, experiments: int, looks: int, per_look: int, effect: float = 0.0) -> np.ndarray:
    """Cumulative sufficient statistics of simulated experiments at each look:
    array (experiments, looks, 2 arms, 3 = n, sum, sum_sq)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (experiments, looks, 2, per_look))
    values[:, :, 1, :] += effect
    block = np.stack(
        [np.full(values.shape[:3], float(per_look)), values.sum(axis=3), (values**2).sum(axis=3)], axis=-1
    )
    return np.cumsum(block, axis=1)


def any_look_rejections(
    sums: np.ndarray, alpha: float, planned: float | None = None, tau: float | None = None
) -> tuple[float, float]:
    """(fraction rejected at some look by the always-valid p-value, same with the fixed-horizon one)."""
    experiments, looks = sums.shape[:2]
    seq_hit = np.zeros(experiments, dtype=bool)
    naive_hit = np.zeros(experiments, dtype=bool)
    for e in range(experiments):
        for k in range(looks):
            c = compare(
                "continuous",
                MeanStats(*sums[e, k, 0]),
                MeanStats(*sums[e, k, 1]),
                alpha=alpha,
                sequential_n=planned,
                sequential_tau=tau,
                bayesian=False,
            )
            assert c.sequential is not None and c.p_value is not None
            seq_hit[e] |= c.sequential.p_value < alpha
            naive_hit[e] |= c.p_value < alpha
    return float(seq_hit.mean()), float(naive_hit.mean())


def test_sequential_test_keeps_its_error_rate_under_repeated_peeking() -> None:
    """500 A/A experiments looked at 20 times (every 50 users per arm): the mSPRT's any-look false
    positive rate stays below alpha; the fixed-horizon test peeked the same way does not."""
    alpha = 0.05
    sums = peeking(seed=2024, experiments=500, looks=20, per_look=50)
    seq_rate, naive_rate = any_look_rejections(sums, alpha, planned=1000)
    tolerance = 3 * math.sqrt(alpha * (1 - alpha) / 500)
    assert seq_rate <= alpha + tolerance
    assert naive_rate > 2.5 * alpha  # ~0.25 for 20 looks
    assert naive_rate - seq_rate > 0.1


def test_sequential_error_control_with_a_fixed_mixing_scale() -> None:
    sums = peeking(seed=7, experiments=300, looks=20, per_look=50)
    seq_rate, _ = any_look_rejections(sums, 0.05, tau=0.05)
    assert seq_rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)


def test_sequential_test_detects_a_real_effect() -> None:
    sums = peeking(seed=3, experiments=100, looks=10, per_look=100, effect=0.3)
    seq_rate, naive_rate = any_look_rejections(sums, 0.05, planned=1000)
    assert seq_rate > 0.95 and naive_rate > 0.95
