"""CUPED (Deng, Xu, Kohavi, Walker 2013): variance reduction with a pre-period covariate.

Each unit's value is adjusted to ``y - θ·(x - x̄)``, where ``x`` is the unit's pre-period covariate
(0 for units without one), ``x̄`` the pooled covariate mean over all variants and ``θ`` the pooled
within-variant regression slope of ``y`` on ``x``:

    θ = Σ_v [Σxy - Σx·Σy/n]_v / Σ_v [Σx² - (Σx)²/n]_v

With this θ the difference of adjusted means equals the treatment coefficient of the OLS regression
``y ~ 1 + treatment + x`` (ANCOVA), and the variance of each adjusted mean is
``(s²_y - 2θ·s_xy + θ²·s²_x) / n`` — all computed from the sums, no raw data.
"""

from __future__ import annotations

from dataclasses import dataclass

from ab_testing.stats.sufficient import MeanStats


def cuped_theta(*stats: MeanStats) -> float | None:
    """The pooled within-variant slope θ over the given variants (None when it is undefined:
    no covariate variance)."""
    sxy = 0.0
    sxx = 0.0
    for s in stats:
        if s.n < 1:
            continue
        sxy += s.sum_xy - s.sum_x * s.sum / s.n
        sxx += s.sum_x_sq - s.sum_x * s.sum_x / s.n
    if sxx <= 1e-12 * max(1.0, sum(abs(s.sum_x_sq) for s in stats)):
        return None
    return sxy / sxx


def pooled_covariate_mean(*stats: MeanStats) -> float:
    n = sum(s.n for s in stats)
    return sum(s.sum_x for s in stats) / n if n > 0 else 0.0


@dataclass(frozen=True, slots=True)
class AdjustedMean:
    """A variant's CUPED-adjusted mean, the per-unit variance of the adjusted values (ddof=1),
    and the variance of the adjusted mean."""

    n: float
    mean: float
    unit_variance: float

    @property
    def variance_of_mean(self) -> float:
        return self.unit_variance / self.n if self.n > 0 else 0.0


def cuped_adjust(stats: MeanStats, theta: float, covariate_mean: float) -> AdjustedMean:
    """``stats`` adjusted with ``theta`` around the pooled ``covariate_mean``."""
    mean = stats.mean - theta * (stats.covariate_mean - covariate_mean)
    var = stats.variance - 2 * theta * stats.covariance + theta * theta * stats.covariate_variance
    return AdjustedMean(stats.n, mean, max(var, 0.0))


def has_covariates(*stats: MeanStats) -> bool:
    return all(s.n_cov > 0 for s in stats)
