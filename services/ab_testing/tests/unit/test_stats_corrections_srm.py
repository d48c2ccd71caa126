"""Multiple-testing corrections vs statsmodels; SRM check vs scipy; Mann-Whitney on a hand-computed case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_testing.stats import adjust_pvalues, mann_whitney, srm_check
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

# ---- Holm / Benjamini-Hochberg ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_adjust_pvalues_vs_statsmodels(method: str, sm_method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 12), rng.uniform(0, 0.01, 4), [0.03, 0.03, 1.0]])
    rng.shuffle(p)
    ours = adjust_pvalues(list(p), method)
    _, expected, _, _ = multipletests(p, alpha=0.05, method=sm_method)
    assert ours == pytest.approx(list(expected), rel=1e-12)
    # monotone in the raw p-values and capped at 1
    order = np.argsort(p)
    adjusted = np.array(ours, dtype=float)[order]
    assert np.all(np.diff(adjusted) >= -1e-15) and adjusted.max() <= 1.0


def test_adjust_pvalues_small_cases_and_missing_values() -> None:
    assert adjust_pvalues([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust_pvalues([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_pvalues([], "holm") == []
    out = adjust_pvalues([0.01, None, 0.02, math.nan], "holm")
    assert out[1] is None and out[3] is None
    assert out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)
    assert adjust_pvalues([0.2], "fdr_bh") == [0.2]
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "bonferroni-ish")
    with pytest.raises(ValueError):
        adjust_pvalues([1.5], "holm")


# ---- sample ratio mismatch -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([5000, 5000], [0.5, 0.5]), ([5100, 4900], [0.5, 0.5]), ([10300, 9700], [0.5, 0.5]),
     ([2000, 3000, 5100], [0.2, 0.3, 0.5]), ([821, 1200], [0.4, 0.6])],
)  # fmt: skip
def test_srm_vs_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    res = srm_check(observed, weights)
    total = sum(observed)
    chi2, p = sps.chisquare(observed, [total * w / sum(weights) for w in weights])
    assert res.chi2 == pytest.approx(chi2, rel=1e-10, abs=1e-12)
    assert res.p_value == pytest.approx(p, rel=1e-8, abs=1e-300)
    assert res.flagged == (p < 0.001)
    assert res.df == len(observed) - 1


def test_srm_flags_only_below_one_in_a_thousand() -> None:
    assert not srm_check([5100, 4900], [0.5, 0.5]).flagged  # p ~ 0.046
    assert srm_check([10300, 9700], [0.5, 0.5]).flagged  # p ~ 2e-5
    assert srm_check([100, 5], [1, 0]).flagged  # units in a variant with weight 0
    empty = srm_check([0, 0], [0.5, 0.5])
    assert empty.p_value == 1.0 and not empty.flagged
    d = srm_check([100, 5], [1, 0]).to_dict()
    assert d["chi2"] is None and d["p_value"] == 0.0 and d["flagged"]
    with pytest.raises(ValueError):
        srm_check([1, 2], [0.5])


# ---- Mann-Whitney U --------------------------------------------------------------------------------


def test_mann_whitney_hand_computed_exact() -> None:
    # treatment above every control value: U_t = 3 * 3 = 9; the exact two-sided p-value is
    # 2 * P(U = 9) = 2 / C(6, 3) = 0.1
    res = mann_whitney([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert res.statistic == 9.0
    assert res.p_value == pytest.approx(0.1)
    assert res.prob_superiority == 1.0
    assert (res.n_control, res.n_treatment) == (3, 3)


def test_mann_whitney_hand_computed_with_ties() -> None:
    control = [1.0, 2.0, 2.0, 3.0, 5.0]
    treatment = [2.0, 3.0, 4.0, 6.0, 7.0, 8.0]
    # U_t: pairs with treatment > control, ties count 1/2
    u = sum(1.0 if t > c else 0.5 if t == c else 0.0 for t in treatment for c in control)
    assert u == 24.5
    n1, n2 = len(treatment), len(control)
    n = n1 + n2
    ties = [3, 2]  # the value 2 three times, 3 twice
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - sum(t**3 - t for t in ties) / (n * (n - 1))))
    z = (u - n1 * n2 / 2 - 0.5) / sigma  # continuity correction towards the mean
    expected = 2 * (1 - 0.5 * (1 + math.erf(z / math.sqrt(2))))
    res = mann_whitney(control, treatment)
    assert res.statistic == u
    assert res.p_value == pytest.approx(expected, rel=1e-9)
    assert res.to_dict()["test"] == "mann_whitney_u"


def test_mann_whitney_empty() -> None:
    res = mann_whitney([], [1.0])
    assert math.isnan(res.p_value) and res.to_dict()["p_value"] is None
