"""CUPED from sums against an OLS regression (ANCOVA) on the raw per-user data."""

from __future__ import annotations

import numpy as np
import pytest
from ab_testing.stats import MeanStats, compare, cuped_adjust, cuped_theta, pooled_covariate_mean


def data(seed: int, n: int = 1500, missing: float = 0.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 10.0, 2 * n)  # pre-period revenue
    treat = np.repeat([0.0, 1.0], n)
    y = 5 + 0.8 * x + 2.0 * treat + rng.normal(0, 8, 2 * n)
    if missing:
        x = np.where(rng.random(2 * n) < missing, np.nan, x)
    return x, y, treat


def stats_of(x: np.ndarray, y: np.ndarray, treat: np.ndarray) -> tuple[MeanStats, MeanStats]:
    cov = [None if np.isnan(v) else float(v) for v in x]
    c = treat == 0
    return (
        MeanStats.from_values(y[c], [v for v, keep in zip(cov, c, strict=True) if keep]),
        MeanStats.from_values(y[~c], [v for v, keep in zip(cov, ~c, strict=True) if keep]),
    )


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_cuped_equals_ancova_regression(missing: float) -> None:
    x, y, treat = data(0, missing=missing)
    control, treatment = stats_of(x, y, treat)
    x0 = np.nan_to_num(x, nan=0.0)  # a unit without a covariate counts as x = 0
    design = np.column_stack([np.ones_like(y), treat, x0])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    theta = cuped_theta(control, treatment)
    assert theta == pytest.approx(beta[2], rel=1e-9)

    c = compare("continuous", control, treatment)
    assert c.test == "cuped_welch_t"
    assert c.cuped is not None
    assert c.abs_lift == pytest.approx(beta[1], rel=1e-9)
    assert c.cuped.theta == pytest.approx(beta[2], rel=1e-9)

    # adjusted values computed on the raw data: means, variance of the difference, reduction
    xbar = x0.mean()
    adj = y - beta[2] * (x0 - xbar)
    ac, at = adj[treat == 0], adj[treat == 1]
    assert c.control.adjusted_mean == pytest.approx(ac.mean(), rel=1e-9)
    assert c.treatment.adjusted_mean == pytest.approx(at.mean(), rel=1e-9)
    var_adj = ac.var(ddof=1) / ac.size + at.var(ddof=1) / at.size
    yc, yt = y[treat == 0], y[treat == 1]
    var_raw = yc.var(ddof=1) / yc.size + yt.var(ddof=1) / yt.size
    assert c.std_error**2 == pytest.approx(var_adj, rel=1e-9)
    assert c.cuped.variance_reduction == pytest.approx(1 - var_adj / var_raw, rel=1e-9)
    assert c.cuped.variance_reduction > (0.5 if not missing else 0.2)
    assert c.cuped.unadjusted_abs_lift == pytest.approx(yt.mean() - yc.mean())
    # the adjusted standard error is close to the OLS one (same model, unpooled variances)
    resid = y - design @ beta
    ols_cov = resid @ resid / (y.size - 3) * np.linalg.inv(design.T @ design)
    assert c.std_error == pytest.approx(np.sqrt(ols_cov[1, 1]), rel=0.02)


def test_theta_pooled_over_all_variants_and_adjust_helper() -> None:
    x, y, treat = data(1)
    control, treatment = stats_of(x, y, treat)
    third = MeanStats.from_values(y[:300] + 1, x[:300])
    theta = cuped_theta(control, treatment, third)
    assert theta is not None
    xbar = pooled_covariate_mean(control, treatment, third)
    c = compare("continuous", control, treatment, theta=theta, covariate_mean=xbar)
    adj = cuped_adjust(treatment, theta, xbar)
    assert c.cuped is not None and c.cuped.theta == theta and c.cuped.covariate_mean == xbar
    assert c.treatment.adjusted_mean == pytest.approx(adj.mean)
    yt, xt = y[treat == 1], x[treat == 1]
    assert adj.unit_variance == pytest.approx((yt - theta * xt).var(ddof=1), rel=1e-9)


def test_cuped_can_be_disabled_and_needs_covariates_in_both_variants() -> None:
    x, y, treat = data(2)
    control, treatment = stats_of(x, y, treat)
    assert compare("continuous", control, treatment, cuped=False).test == "welch_t"
    no_cov = MeanStats(control.n, control.sum, control.sum_sq)
    assert compare("continuous", no_cov, treatment).cuped is None
    # a constant covariate has no variance: no adjustment
    const = MeanStats.from_values(y[:100], [1.0] * 100)
    assert cuped_theta(const, const) is None
    assert compare("continuous", const, const).cuped is None


def test_cuped_on_binary_metric() -> None:
    rng = np.random.default_rng(4)
    x = rng.binomial(1, 0.3, 4000).astype(float)  # converted in the pre-period
    y = rng.binomial(1, np.where(x == 1, 0.4, 0.05)).astype(float)
    control = MeanStats.from_values(y[:2000], x[:2000])
    treatment = MeanStats.from_values(y[2000:], x[2000:])
    c = compare("binary", control, treatment)
    assert c.test == "cuped_welch_t"
    assert c.cuped is not None and c.cuped.unadjusted_test == "two_proportion_z"
    assert c.cuped.variance_reduction > 0.1
    assert c.bayesian is not None and c.bayesian.method == "normal"
