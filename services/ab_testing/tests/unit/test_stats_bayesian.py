"""Bayesian chance to win and expected loss against the exact Beta formula and seeded Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from ab_testing.stats import MeanStats, RatioStats, beta_binomial, beta_compare, compare
from ab_testing.stats import bayesian as bayes
from scipy import special


def exact_prob_t_beats_c(a_c: int, b_c: int, a_t: int, b_t: int) -> float:
    """P(p_t > p_c), closed form for integer a_t (Evan Miller, "Formulas for Bayesian A/B testing")."""
    i = np.arange(a_t)
    terms = (
        special.betaln(a_c + i, b_c + b_t)
        - np.log(b_t + i)
        - special.betaln(1 + i, b_t)
        - special.betaln(a_c, b_c)
    )
    return float(np.exp(terms).sum())


CASES = [
    (1, 1, 1, 1),
    (2, 30, 5, 30),
    (11, 91, 15, 87),
    (101, 901, 130, 870),
    (501, 4501, 560, 4440),
    (1, 1, 3001, 27001),  # wide control, narrow treatment
    (3001, 27001, 1, 1),  # narrow control, wide treatment
    (2, 3, 1000, 10),
    (5001, 45001, 5101, 44901),
]


@pytest.mark.parametrize(("a_c", "b_c", "a_t", "b_t"), CASES)
def test_beta_chance_to_win_vs_exact_formula(a_c: int, b_c: int, a_t: int, b_t: int) -> None:
    prob, _ = beta_compare(a_c, b_c, a_t, b_t)
    assert prob == pytest.approx(exact_prob_t_beats_c(a_c, b_c, a_t, b_t), abs=1e-9)


@pytest.mark.parametrize(("a_c", "b_c", "a_t", "b_t"), CASES)
def test_beta_chance_and_loss_vs_monte_carlo(a_c: int, b_c: int, a_t: int, b_t: int) -> None:
    rng = np.random.default_rng(a_c * 7919 + a_t)
    draws = 400_000
    pc = rng.beta(a_c, b_c, draws)
    pt = rng.beta(a_t, b_t, draws)
    prob, loss = beta_compare(a_c, b_c, a_t, b_t)
    mc_prob = (pt > pc).mean()
    assert prob == pytest.approx(mc_prob, abs=5 * np.sqrt(mc_prob * (1 - mc_prob) / draws) + 1e-6)
    shortfall = np.maximum(pc - pt, 0.0)
    assert loss == pytest.approx(shortfall.mean(), abs=5 * shortfall.std() / np.sqrt(draws) + 1e-12)


def test_beta_binomial_direction() -> None:
    rng = np.random.default_rng(9)
    s_c, n_c, s_t, n_t = 120, 1000, 100, 1000
    win_h, loss_h = beta_binomial(s_c, n_c, s_t, n_t, "higher")
    win_l, loss_l = beta_binomial(s_c, n_c, s_t, n_t, "lower")
    assert win_h + win_l == pytest.approx(1.0)
    pc = rng.beta(1 + s_c, 1 + n_c - s_c, 400_000)
    pt = rng.beta(1 + s_t, 1 + n_t - s_t, 400_000)
    assert win_l == pytest.approx((pt < pc).mean(), abs=3e-3)
    assert loss_l == pytest.approx(np.maximum(pt - pc, 0).mean(), abs=2e-5)
    assert loss_h == pytest.approx(np.maximum(pc - pt, 0).mean(), abs=2e-5)
    assert loss_h > loss_l  # the treatment is lower: shipping it loses when higher is better


def test_compare_binary_uses_beta_posteriors() -> None:
    c = compare("binary", MeanStats(1000, 100, 100), MeanStats(1000, 120, 120))
    assert c.bayesian is not None and c.bayesian.method == "beta_binomial"
    prob, loss = beta_compare(101, 901, 121, 881)
    assert c.bayesian.chance_to_win == prob
    assert c.bayesian.expected_loss == loss


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_normal_approximation_vs_monte_carlo(direction: str) -> None:
    rng = np.random.default_rng(21)
    yc = rng.normal(10.0, 4.0, 800)
    yt = rng.normal(10.3, 4.0, 800)
    c = compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), direction=direction)
    assert c.bayesian is not None and c.bayesian.method == "normal"
    assert c.std_error is not None
    delta = rng.normal(c.abs_lift, c.std_error, 1_000_000)
    good = delta if direction == "higher" else -delta
    assert c.bayesian.chance_to_win == pytest.approx((good > 0).mean(), abs=3e-3)
    assert c.bayesian.expected_loss == pytest.approx(np.maximum(-good, 0).mean(), rel=0.01)


def test_normal_posterior_edge_cases() -> None:
    assert bayes.normal(1.0, 0.0, "higher") == (1.0, 0.0)
    assert bayes.normal(1.0, 0.0, "lower") == (0.0, 1.0)
    assert bayes.normal(0.0, 1.0, "higher")[0] == pytest.approx(0.5)
    assert bayes.normal(0.0, 1.0, "higher")[1] == pytest.approx(1 / np.sqrt(2 * np.pi))


def test_ratio_metric_bayesian_is_normal() -> None:
    c = compare("ratio", RatioStats(100, 50, 500, 60, 2600, 270), RatioStats(100, 60, 500, 80, 2600, 330))
    assert c.bayesian is not None and c.bayesian.method == "normal"
    assert 0.5 < c.bayesian.chance_to_win < 1
