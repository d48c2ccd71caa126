"""compare() from sums against independent computations on the raw data (scipy, statsmodels, numpy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ab_testing.stats import Comparison, MeanStats, RatioStats, apply_correction, compare
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW


def strict_json(c: Comparison) -> dict:
    return json.loads(json.dumps(c.to_dict(), allow_nan=False))


@pytest.mark.parametrize(
    ("n_c", "s_c", "n_t", "s_t"),
    [(1000, 100, 1000, 130), (5000, 480, 4700, 455), (200, 3, 260, 9), (12000, 6000, 11000, 5400)],
)
def test_binary_vs_statsmodels_and_chi_square(n_c: int, s_c: int, n_t: int, s_t: int) -> None:
    control = MeanStats(n_c, s_c, s_c)
    treatment = MeanStats(n_t, s_t, s_t)
    c = compare("binary", control, treatment, alpha=0.05)
    assert c.test == "two_proportion_z"
    z, p = proportions_ztest([s_t, s_c], [n_t, n_c])
    assert c.statistic == pytest.approx(z, rel=1e-10)
    assert c.p_value == pytest.approx(p, rel=1e-8)
    chi2, p_chi, dof, _ = sps.chi2_contingency([[s_t, n_t - s_t], [s_c, n_c - s_c]], correction=False)
    assert c.chi2 is not None
    assert c.chi2.statistic == pytest.approx(chi2, rel=1e-10)
    assert c.chi2.p_value == pytest.approx(p_chi, rel=1e-8)
    assert dof == c.chi2.df == 1
    low, upp = confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff", alpha=0.05)
    assert c.abs_lift == pytest.approx(s_t / n_t - s_c / n_c)
    assert c.abs_lift_ci == pytest.approx((low, upp), rel=1e-10)
    assert c.control.mean == s_c / n_c and c.treatment.sum == s_t
    assert c.rel_lift == pytest.approx((s_t / n_t) / (s_c / n_c) - 1)
    strict_json(c)


def test_binary_from_raw_values_equals_counts() -> None:
    rng = np.random.default_rng(3)
    yc, yt = rng.binomial(1, 0.1, 3000), rng.binomial(1, 0.12, 3100)
    a = compare("binary", MeanStats.from_values(yc), MeanStats.from_values(yt))
    b = compare("binary", MeanStats(3000, yc.sum(), yc.sum()), MeanStats(3100, yt.sum(), yt.sum()))
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_continuous_welch_vs_scipy_and_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    yc = rng.lognormal(3.0, 0.8, 700)
    yt = rng.lognormal(3.05, 0.9, 650)
    c = compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt), alpha=0.1)
    assert c.test == "welch_t"
    res = sps.ttest_ind(yt, yc, equal_var=False)
    assert c.statistic == pytest.approx(res.statistic, rel=1e-9)
    assert c.p_value == pytest.approx(res.pvalue, rel=1e-8)
    cm = CompareMeans(DescrStatsW(yt), DescrStatsW(yc))
    _, _, df = cm.ttest_ind(usevar="unequal")
    assert c.df == pytest.approx(df, rel=1e-9)
    assert c.abs_lift_ci == pytest.approx(cm.tconfint_diff(alpha=0.1, usevar="unequal"), rel=1e-9)
    assert c.abs_lift == pytest.approx(yt.mean() - yc.mean())
    assert c.control.std == pytest.approx(yc.std(ddof=1))
    assert c.cuped is None and c.chi2 is None
    strict_json(c)


def test_relative_lift_interval_delta_method_vs_numpy_and_bootstrap() -> None:
    rng = np.random.default_rng(7)
    yc = rng.gamma(2.0, 5.0, 2000)
    yt = rng.gamma(2.0, 5.4, 2000)
    c = compare("continuous", MeanStats.from_values(yc), MeanStats.from_values(yt))
    mc, mt = yc.mean(), yt.mean()
    vc, vt = yc.var(ddof=1) / yc.size, yt.var(ddof=1) / yt.size
    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    crit = sps.t.ppf(0.975, c.df)
    assert c.rel_lift == pytest.approx(mt / mc - 1)
    assert c.rel_lift_ci == pytest.approx((mt / mc - 1 - crit * se, mt / mc - 1 + crit * se), rel=1e-9)
    # the delta-method standard error agrees with a seeded bootstrap of the ratio of means
    boot = np.empty(2000)
    for i in range(boot.size):
        boot[i] = rng.choice(yt, yt.size).mean() / rng.choice(yc, yc.size).mean() - 1
    assert se == pytest.approx(boot.std(ddof=1), rel=0.08)


def test_ratio_metric_delta_method_vs_numpy_linearization_and_bootstrap() -> None:
    rng = np.random.default_rng(11)

    def users(n: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
        views = rng.poisson(6, n) + 1
        return rng.binomial(views, ctr).astype(float), views.astype(float)

    nc, dc = users(3000, 0.10)
    nt, dt = users(3000, 0.11)
    c = compare("ratio", RatioStats.from_values(nc, dc), RatioStats.from_values(nt, dt))
    assert c.test == "delta_method_z"

    def ratio_var(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
        r = num.sum() / den.sum()
        lin = (num - r * den) / den.mean()  # influence-function linearization of Σnum/Σden
        return r, lin.var(ddof=1) / num.size

    rc, vc = ratio_var(nc, dc)
    rt, vt = ratio_var(nt, dt)
    se = math.sqrt(vc + vt)
    assert c.abs_lift == pytest.approx(rt - rc)
    assert c.std_error == pytest.approx(se, rel=1e-9)
    assert c.p_value == pytest.approx(2 * sps.norm.sf(abs(rt - rc) / se), rel=1e-8)
    z = sps.norm.ppf(0.975)
    assert c.abs_lift_ci == pytest.approx((rt - rc - z * se, rt - rc + z * se), rel=1e-9)
    assert c.control.denominator_sum == dc.sum()
    # bootstrap over users (numerator and denominator resampled together)
    boot = np.empty(1500)
    for i in range(boot.size):
        it, ic = rng.integers(0, nt.size, nt.size), rng.integers(0, nc.size, nc.size)
        boot[i] = nt[it].sum() / dt[it].sum() - nc[ic].sum() / dc[ic].sum()
    assert se == pytest.approx(boot.std(ddof=1), rel=0.08)


def test_direction_decides_better_and_worse() -> None:
    control = MeanStats(5000, 500, 500)
    treatment = MeanStats(5000, 600, 600)
    up = compare("binary", control, treatment, direction="higher")
    down = compare("binary", control, treatment, direction="lower")
    assert up.significant and up.better and not up.worse
    assert down.significant and down.worse and not down.better
    assert up.p_value == down.p_value
    assert up.bayesian is not None and down.bayesian is not None
    assert up.bayesian.chance_to_win == pytest.approx(1 - down.bayesian.chance_to_win)
    flat = compare("binary", control, MeanStats(5000, 505, 505))
    assert not flat.significant and not flat.better and not flat.worse


def test_degenerate_inputs_do_not_crash() -> None:
    empty = compare("continuous", MeanStats(), MeanStats())
    assert empty.p_value is None and empty.abs_lift_ci is None and not empty.significant
    assert empty.sequential is None and empty.bayesian is None
    strict_json(empty)

    one = compare("binary", MeanStats(1, 1, 1), MeanStats(0, 0, 0))
    assert one.p_value is None
    strict_json(one)

    zeros = compare("binary", MeanStats(100, 0, 0), MeanStats(100, 0, 0))
    assert zeros.p_value == 1.0 and zeros.abs_lift == 0 and not zeros.significant
    assert zeros.rel_lift is None  # control mean 0
    strict_json(zeros)

    constant = compare("continuous", MeanStats.from_values([2.0] * 10), MeanStats.from_values([3.0] * 10))
    assert constant.p_value == 0.0 and constant.better
    strict_json(constant)

    assert compare("ratio", RatioStats(), RatioStats()).p_value is None

    with pytest.raises(ValueError):
        compare("binary", MeanStats(10, 11, 11), MeanStats(10, 1, 1))
    with pytest.raises(ValueError):
        compare("nope", MeanStats(), MeanStats())
    with pytest.raises(ValueError):
        compare("binary", MeanStats(), MeanStats(), direction="up")
    with pytest.raises(TypeError):
        compare("ratio", MeanStats(), MeanStats())


def test_to_dict_shape() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=400)
    x = y + rng.normal(size=400)
    c = compare(
        "continuous",
        MeanStats.from_values(y[:200], x[:200]),
        MeanStats.from_values(y[200:] + 0.2, x[200:]),
    )
    d = strict_json(c)
    assert set(d) >= {
        "metric_type", "direction", "alpha", "test", "control", "treatment", "abs_lift", "abs_lift_ci",
        "rel_lift", "rel_lift_ci", "std_error", "statistic", "df", "p_value", "significant", "better",
        "worse", "chi2", "cuped", "sequential", "bayesian", "adjusted_p_value", "significant_adjusted",
        "correction",
    }  # fmt: skip
    assert set(d["control"]) == {"n", "mean", "std", "sum", "denominator_sum", "adjusted_mean"}
    assert set(d["sequential"]) == {"p_value", "ci", "tau", "planned_n", "significant", "method"}
    assert set(d["bayesian"]) == {"chance_to_win", "expected_loss", "method"}
    assert d["test"] == "cuped_welch_t" and d["cuped"]["unadjusted_test"] == "welch_t"
    assert isinstance(d["abs_lift_ci"], list) and len(d["abs_lift_ci"]) == 2


def test_apply_correction_sets_adjusted_p_values() -> None:
    control = MeanStats(2000, 200, 200)
    comps = [compare("binary", control, MeanStats(2000, s, s)) for s in (200, 230, 260, 245)]
    holm = apply_correction(comps, "holm")
    raw = [c.p_value for c in comps]
    m = len(raw)
    order = np.argsort(raw)
    expected = np.maximum.accumulate([(m - i) * raw[j] for i, j in enumerate(order)])
    for i, j in enumerate(order):
        assert holm[j].adjusted_p_value == pytest.approx(min(1.0, expected[i]))
        assert holm[j].significant_adjusted == (holm[j].adjusted_p_value < 0.05)
        assert holm[j].correction == "holm"
    assert apply_correction(comps, "bh")[0].correction == "bh"
