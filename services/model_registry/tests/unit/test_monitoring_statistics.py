"""Drift statistics against external oracles (scipy, direct numpy), through the profile path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_registry.monitoring import drift as st
from model_registry.monitoring.profile import build_profile
from model_registry.monitoring.report import DriftConfig, FeatureConfig, drift
from scipy import stats
from scipy.spatial.distance import jensenshannon

TOL = 1e-9
CATS = np.array(list("abcdefghij"))


def _feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in report["features"] if f["feature"] == name)


def _run(ref: Any, cur: Any, method: str | None = None, binning: Any = None) -> dict[str, Any]:
    profile = build_profile({"x": ref})
    config = DriftConfig(features={"x": FeatureConfig(method=method, binning=binning)})
    return _feature(drift(profile, {"x": cur}, config), "x")


def _cat_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.union1d(ref, cur)
    return (
        np.array([(ref == k).sum() for k in keys], dtype=float),
        np.array([(cur == k).sum() for k in keys], dtype=float),
    )


def _direct_psi(r: np.ndarray, c: np.ndarray) -> float:
    """PSI written out with the zero-share rule, independent of the module's helpers."""

    def fill(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        m = v[v > 0].min()
        v[v == 0] = m / 1e6 if m <= 1e-4 else 1e-4
        return v

    r, c = fill(r), fill(c)
    return float(((r - c) * np.log(r / c)).sum())


def _pinned(ref: np.ndarray, n_bins: int = 10) -> np.ndarray:
    return np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261207)


def test_ks_is_the_default_for_a_small_numeric_reference_and_equals_scipy(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=800), rng.normal(0.1, 1.1, size=600)
    got = _run(ref, cur)
    want = stats.ks_2samp(ref, cur)
    assert got["method"] == "ks" and got["reference_sampled"] is False
    assert abs(got["statistic"] - want.statistic) < TOL and abs(got["p_value"] - want.pvalue) < TOL
    assert got["drifted"] == (want.pvalue < 0.05)


def test_wasserstein_over_std_is_the_default_for_a_large_numeric_reference(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(2, 3, size=5000), rng.normal(2.3, 3, size=4000)
    got = _run(ref, cur)
    want = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert got["method"] == "wasserstein" and got["p_value"] is None
    assert abs(got["statistic"] - want) < TOL
    assert got["drifted"] == (want >= 0.1)


@pytest.mark.parametrize(("n", "m"), [(1, 1), (1, 7), (9, 2), (1000, 37), (3000, 20000)])
def test_wasserstein_1_equals_scipy_with_ties_and_unequal_sizes(
    rng: np.random.Generator, n: int, m: int
) -> None:
    # our own merge of the two sorted samples (faster than scipy's) must be scipy's value exactly
    for u, v in (
        (rng.normal(size=n), rng.normal(0.3, 2, size=m)),
        (rng.integers(0, 4, n).astype(float), rng.integers(1, 6, m).astype(float)),  # many ties
    ):
        assert abs(st.wasserstein_1(u, v) - stats.wasserstein_distance(u, v)) < 1e-12
        assert abs(st.wasserstein_1(v, u) - stats.wasserstein_distance(v, u)) < 1e-12


def test_wasserstein_std_floor_for_a_constant_reference() -> None:
    res = st.wasserstein_std(np.zeros(100), np.full(100, 0.01))
    assert abs(res.statistic - 0.01 / 0.001) < TOL


def test_chi_square_is_two_sample_contingency(rng: np.random.Generator) -> None:
    ref = rng.choice(CATS, size=900, p=np.full(10, 0.1))
    cur = rng.choice(CATS[:9], size=700)
    got = _run(ref, cur)
    r, c = _cat_counts(ref, cur)
    want = stats.chi2_contingency(np.vstack([r, c]))
    assert got["method"] == "chisquare"
    assert abs(got["statistic"] - want.statistic) < TOL and abs(got["p_value"] - want.pvalue) < TOL


def test_chi_square_differs_from_the_one_sample_form(rng: np.random.Generator) -> None:
    ref, cur = rng.choice(CATS, size=1000), rng.choice(CATS, size=1000)
    r, c = _cat_counts(ref, cur)
    one_sample = stats.chisquare(c, r * c.sum() / r.sum()).statistic
    two_sample = st.chi_square_two_sample(r, c).statistic
    assert one_sample == pytest.approx(2 * two_sample, rel=0.2)


def test_categorical_js_is_the_default_for_a_large_reference_and_equals_scipy(
    rng: np.random.Generator,
) -> None:
    ref, cur = rng.choice(CATS, size=5000), rng.choice(CATS[2:], size=3000)
    got = _run(ref, cur)
    r, c = _cat_counts(ref, cur)
    assert got["method"] == "jensenshannon"
    assert abs(got["statistic"] - jensenshannon(r / r.sum(), c / c.sum())) < TOL


def test_categorical_psi_equals_direct_numpy(rng: np.random.Generator) -> None:
    ref, cur = rng.choice(CATS, size=5000), rng.choice(CATS[1:], size=3000)
    got = _run(ref, cur, method="psi")
    r, c = _cat_counts(ref, cur)
    assert abs(got["statistic"] - _direct_psi(r / r.sum(), c / c.sum())) < TOL


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "chisquare"])
def test_numeric_binned_methods_use_pinned_reference_quantile_bins(
    rng: np.random.Generator, method: str
) -> None:
    ref, cur = rng.normal(size=5000), rng.normal(0.2, 1.0, size=3000)
    got = _run(ref, cur, method=method)
    edges = _pinned(ref)
    r = np.bincount(np.digitize(ref, edges, right=True), minlength=edges.size + 1).astype(float)
    c = np.bincount(np.digitize(cur, edges, right=True), minlength=edges.size + 1).astype(float)
    want = {
        "psi": lambda: _direct_psi(r / r.sum(), c / c.sum()),
        "jensenshannon": lambda: float(jensenshannon(r / r.sum(), c / c.sum())),
        "chisquare": lambda: float(stats.chi2_contingency(np.vstack([r, c])).statistic),
    }[method]()
    assert got["method"] == method and abs(got["statistic"] - want) < TOL


@pytest.mark.parametrize("method", ["psi", "jensenshannon"])
def test_evidently_binning_sturges_over_combined(rng: np.random.Generator, method: str) -> None:
    ref, cur = rng.normal(size=3000), rng.normal(0.3, 1.2, size=2000)
    got = _run(ref, cur, method=method, binning="evidently")
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    assert edges.size - 1 == int(np.ceil(np.log2(5000))) + 1
    r, c = np.histogram(ref, edges)[0] / ref.size, np.histogram(cur, edges)[0] / cur.size
    want = _direct_psi(r, c) if method == "psi" else float(jensenshannon(r, c))
    assert abs(got["statistic"] - want) < TOL


def test_evidently_categorical_shares_keep_missing_in_the_denominator() -> None:
    ref = ["a"] * 50 + ["b"] * 40 + [None] * 10
    cur = ["a"] * 30 + ["b"] * 60 + [None] * 10
    got = _run(ref, cur, method="psi", binning="evidently")
    assert abs(got["statistic"] - _direct_psi(np.array([0.5, 0.4]), np.array([0.3, 0.6]))) < TOL


def test_zero_share_rule() -> None:
    assert st.fill_zero_shares([0.5, 0.5, 0.0]).tolist() == [0.5, 0.5, 1e-4]
    assert st.fill_zero_shares([0.99995, 0.00005, 0.0])[2] == pytest.approx(0.00005 / 1e6)


def test_numeric_with_few_values_is_compared_as_categories(rng: np.random.Generator) -> None:
    ref, cur = rng.integers(0, 3, size=800).astype(float), rng.integers(0, 3, size=500).astype(float)
    got = _run(ref, cur)
    r, c = _cat_counts(ref, cur)
    assert got["method"] == "chisquare"
    assert abs(got["statistic"] - stats.chi2_contingency(np.vstack([r, c])).statistic) < TOL


def test_holm() -> None:
    assert st.holm_reject([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    assert st.holm_reject([0.01, 0.02, 0.03], 0.05) == [True, True, True]
    assert st.holm_reject([], 0.05) == []


def test_threshold_override_per_feature(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=5000), rng.normal(0.05, 1, size=5000)
    profile = build_profile({"x": ref})
    cfg = DriftConfig(features={"x": FeatureConfig(method="wasserstein", threshold=0.01)})
    got = _feature(drift(profile, {"x": cur}, cfg), "x")
    assert got["threshold"] == 0.01 and got["drifted"] is True
