"""Bayesian summaries: chance to win and expected loss.

Binary metrics: independent ``Beta(1 + successes, 1 + failures)`` posteriors (uniform prior). Both
quantities are one-dimensional integrals over the treatment's posterior, computed by Gauss-Legendre
quadrature on a partition of its support (split at both posteriors' means and 1e-13 tails, so a
narrow posterior inside a wide one is integrated accurately; 32 nodes per piece) — deterministic,
within ~1e-9 of the exact values, 0.1-0.3 ms:

    P(p_t > p_c)        = ∫ f_t(y) · I_y(a_c, b_c) dy
    E[max(p_c - p_t, 0)] = ∫ f_t(y) · [ μ_c·(1 - I_y(a_c + 1, b_c)) - y·(1 - I_y(a_c, b_c)) ] dy

(``I`` the regularized incomplete beta function; ``x·Beta(a, b)`` density = ``μ·Beta(a + 1, b)``).

Continuous and ratio metrics (and CUPED-adjusted binary ones): the normal approximation
``δ ~ N(d, V)`` (flat prior) — ``P(win) = Φ(m/s)`` and ``E[loss] = s·φ(m/s) - m·Φ(-m/s)`` with
``m`` the difference in the good direction and ``s = √V``.

"Win" follows the metric's direction; the expected loss is that of shipping the treatment, in the
metric's units (how much worse it is expected to be, counting 0 where it is better).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_TAIL = 1e-13
_NORMAL_BOUNDS_ABOVE = 100.0  # both Beta parameters above this: tails by mean ± 10 sd (faster)
_SDS = 10.0


def _support(a: float, b: float) -> tuple[float, float, float]:
    """(low, mean, high): all but ~1e-13 of Beta(a, b)'s mass is in [low, high]."""
    mean = a / (a + b)
    if min(a, b) > _NORMAL_BOUNDS_ABOVE:
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        return max(mean - _SDS * sd, 0.0), mean, min(mean + _SDS * sd, 1.0)
    return float(special.betaincinv(a, b, _TAIL)), mean, float(special.betainccinv(a, b, _TAIL))


def _partition(a_t: float, b_t: float, a_c: float, b_c: float) -> np.ndarray:
    """The treatment's support split at both posteriors' means and the control's support ends, each
    piece halved again (so a narrow posterior inside a wide one gets its own nodes)."""
    lo_t, mean_t, hi_t = _support(a_t, b_t)
    points = {lo_t, mean_t, hi_t}
    points.update(p for p in _support(a_c, b_c) if lo_t < p < hi_t)
    edges = np.array(sorted(points))
    mids = (edges[:-1] + edges[1:]) / 2.0
    return np.sort(np.concatenate([edges, mids]))


def beta_compare(a_c: float, b_c: float, a_t: float, b_t: float) -> tuple[float, float]:
    """``(P(p_t > p_c), E[max(p_c - p_t, 0)])`` for ``p_c ~ Beta(a_c, b_c)``, ``p_t ~ Beta(a_t, b_t)``.

    Uses ``I_y(a + 1, b) = I_y(a, b) - y^a·(1 - y)^b / (a·B(a, b))`` so one incomplete-beta call
    serves both integrals: the loss integrand is ``(μ_c - y)·(1 - I_y(a_c, b_c)) + μ_c·g(y)``.
    """
    edges = _partition(a_t, b_t, a_c, b_c)
    lo, hi = edges[:-1], edges[1:]
    half = (hi - lo)[:, None] / 2.0
    y = (lo[:, None] + half + half * _NODES[None, :]).ravel()
    w = (half * _WEIGHTS[None, :]).ravel()
    keep = (y > 0.0) & (y < 1.0) & (w > 0)
    y, w = y[keep], w[keep]
    log_y, log_1my = np.log(y), np.log1p(-y)
    wf = w * np.exp((a_t - 1.0) * log_y + (b_t - 1.0) * log_1my - special.betaln(a_t, b_t))
    cdf_c = special.betainc(a_c, b_c, y)
    g = np.exp(a_c * log_y + b_c * log_1my - math.log(a_c) - special.betaln(a_c, b_c))
    mean_c = a_c / (a_c + b_c)
    prob = float(wf @ cdf_c)
    loss = float(wf @ ((mean_c - y) * (1.0 - cdf_c) + mean_c * g))
    return min(max(prob, 0.0), 1.0), max(loss, 0.0)


def beta_binomial(
    successes_c: float, n_c: float, successes_t: float, n_t: float, direction: str = "higher"
) -> tuple[float, float]:
    """``(chance_to_win, expected_loss)`` of the treatment for a binary metric, Beta(1, 1) prior."""
    a_c, b_c = 1.0 + successes_c, 1.0 + n_c - successes_c
    a_t, b_t = 1.0 + successes_t, 1.0 + n_t - successes_t
    prob_t_higher, loss_if_higher = beta_compare(a_c, b_c, a_t, b_t)
    if direction == "higher":
        return prob_t_higher, loss_if_higher
    # lower is better: loss = E[max(p_t - p_c, 0)] = E[p_t - p_c] + E[max(p_c - p_t, 0)]
    diff_means = a_t / (a_t + b_t) - a_c / (a_c + b_c)
    return 1.0 - prob_t_higher, max(diff_means + loss_if_higher, 0.0)


def normal(diff: float, variance: float, direction: str = "higher") -> tuple[float, float]:
    """``(chance_to_win, expected_loss)`` with ``δ ~ N(diff, variance)``."""
    m = diff if direction == "higher" else -diff
    if variance <= 0:
        return (1.0 if m > 0 else 0.0 if m < 0 else 0.5), max(-m, 0.0)
    s = math.sqrt(variance)
    z = m / s
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return float(special.ndtr(z)), max(s * pdf - m * float(special.ndtr(-z)), 0.0)
