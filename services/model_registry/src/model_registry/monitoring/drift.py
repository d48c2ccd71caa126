"""Drift statistics on plain arrays: numpy/scipy only, no web or database code.

Every function returns a `StatResult` (method, statistic, p-value for tests, threshold, drifted).
Tests drift when p < threshold; distances drift when statistic >= threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

KS = "ks"
WASSERSTEIN = "wasserstein"
PSI = "psi"
JENSEN_SHANNON = "jensenshannon"
CHI_SQUARE = "chisquare"

METHODS = (KS, WASSERSTEIN, PSI, JENSEN_SHANNON, CHI_SQUARE)
P_VALUE_METHODS = frozenset({KS, CHI_SQUARE})
DEFAULT_THRESHOLDS: dict[str, float] = {
    KS: 0.05,
    CHI_SQUARE: 0.05,
    WASSERSTEIN: 0.1,
    PSI: 0.1,
    JENSEN_SHANNON: 0.1,
}
STD_FLOOR = 0.001  # Evidently's floor on the reference std for Wasserstein/std


@dataclass(frozen=True)
class StatResult:
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _floats(values: ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _test(method: str, statistic: float, p_value: float, threshold: float) -> StatResult:
    return StatResult(method, statistic, p_value, threshold, p_value < threshold)


def _distance(method: str, statistic: float, threshold: float) -> StatResult:
    return StatResult(method, statistic, None, threshold, statistic >= threshold)


def ks_test(
    reference: ArrayLike, current: ArrayLike, threshold: float = DEFAULT_THRESHOLDS[KS]
) -> StatResult:
    """Two-sample Kolmogorov-Smirnov (scipy's ks_2samp, two-sided, method 'auto')."""
    from scipy import stats  # imported on first use: scipy.stats costs ~2 s of service start-up

    res = stats.ks_2samp(_floats(reference), _floats(current))
    return _test(KS, float(res.statistic), float(res.pvalue), threshold)


def wasserstein_std(
    reference: ArrayLike, current: ArrayLike, threshold: float = DEFAULT_THRESHOLDS[WASSERSTEIN]
) -> StatResult:
    """Wasserstein-1 distance over max(population std of the reference, 0.001)."""
    ref, cur = _floats(reference), _floats(current)
    norm = max(float(np.std(ref)), STD_FLOOR)
    return _distance(WASSERSTEIN, wasserstein_1(ref, cur) / norm, threshold)


def wasserstein_1(u: ArrayLike, v: ArrayLike) -> float:
    """scipy's unweighted `wasserstein_distance`: the integral of |F_u - F_v| between the pooled
    sorted values. Each side is sorted once and the two runs merged by a stable argsort; the CDFs
    are running counts of each side (inside a run of ties they are off, but there the step
    width is 0), kept as integers until the end. About 3x faster than scipy on 100k values."""
    u_sorted, v_sorted = np.sort(_floats(u)), np.sort(_floats(v))
    n, m = u_sorted.size, v_sorted.size
    if not (n and m):
        raise ValueError("Wasserstein distance needs values on both sides")
    both = np.concatenate([u_sorted, v_sorted])
    order = np.argsort(both, kind="stable")
    u_count = np.cumsum(order[:-1] < n)
    v_count = np.arange(1, n + m) - u_count
    gap = np.abs(u_count * m - v_count * n)  # |F_u - F_v| * n * m, exact in int64
    return float(np.dot(gap, np.diff(both[order]))) / (n * m)


def fill_zero_shares(shares: ArrayLike) -> FloatArray:
    """Evidently's rule: zeros become min_nonzero / 1e6 if min_nonzero <= 1e-4, else 1e-4."""
    out = _floats(shares).copy()
    nonzero = out[out > 0]
    if nonzero.size == out.size:
        return out
    smallest = float(nonzero.min()) if nonzero.size else 0.0
    out[out == 0] = smallest / 1e6 if 0 < smallest <= 1e-4 else 1e-4
    return out


def psi_from_shares(
    reference_shares: ArrayLike, current_shares: ArrayLike, threshold: float = DEFAULT_THRESHOLDS[PSI]
) -> StatResult:
    """PSI = sum((r - c) * ln(r / c)) after the zero-share rule (no renormalisation)."""
    ref, cur = fill_zero_shares(reference_shares), fill_zero_shares(current_shares)
    return _distance(PSI, float(np.sum((ref - cur) * np.log(ref / cur))), threshold)


def js_from_shares(
    reference_shares: ArrayLike,
    current_shares: ArrayLike,
    threshold: float = DEFAULT_THRESHOLDS[JENSEN_SHANNON],
) -> StatResult:
    """Jensen-Shannon distance, natural log (0 .. sqrt(ln 2)); scipy normalises both vectors."""
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(_floats(reference_shares), _floats(current_shares)))
    return _distance(JENSEN_SHANNON, value, threshold)


def chi_square_two_sample(
    reference_counts: ArrayLike, current_counts: ArrayLike, threshold: float = DEFAULT_THRESHOLDS[CHI_SQUARE]
) -> StatResult:
    """Chi-square test of homogeneity on the 2 x k contingency table (scipy chi2_contingency).

    Not the one-sample goodness-of-fit form: that treats reference shares as exact and flags
    about half of unchanged windows at equal sizes. Categories empty in both rows are dropped;
    with fewer than two categories left the samples cannot differ (statistic 0, p 1).
    """
    table = np.vstack([_floats(reference_counts), _floats(current_counts)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return _test(CHI_SQUARE, 0.0, 1.0, threshold)
    from scipy import stats

    res = stats.chi2_contingency(table)
    return _test(CHI_SQUARE, float(res.statistic), float(res.pvalue), threshold)


def shares(counts: ArrayLike, total: float | None = None) -> FloatArray:
    """Counts as shares of `total` (default: their sum)."""
    arr = _floats(counts)
    denominator = float(arr.sum()) if total is None else float(total)
    return arr / denominator if denominator > 0 else np.zeros_like(arr)


# --- binning -------------------------------------------------------------------------------------


def quantile_edges(values: ArrayLike, n_bins: int = 10) -> FloatArray:
    """Interior edges at the reference's quantiles (duplicates merged); outer bins are open."""
    arr = _floats(values)
    if arr.size == 0:
        return np.empty(0, dtype=np.float64)
    inner = np.quantile(arr, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.unique(inner)


def bin_counts(values: ArrayLike, edges: ArrayLike) -> NDArray[np.int64]:
    """Counts per bin (-inf, e0], (e0, e1], ..., (e_last, inf): len(edges) + 1 bins."""
    edge_arr = _floats(edges)
    index = np.searchsorted(edge_arr, _floats(values), side="left")
    return np.bincount(index, minlength=edge_arr.size + 1).astype(np.int64)


def sturges_shares(reference: ArrayLike, current: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Evidently's numeric binning: Sturges equal-width edges over reference + current combined."""
    ref, cur = _floats(reference), _floats(current)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_counts = np.histogram(ref, edges)[0]
    cur_counts = np.histogram(cur, edges)[0]
    return shares(ref_counts, ref.size), shares(cur_counts, cur.size)


def aligned_counts(
    reference: dict[str, int], current: dict[str, int]
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Counts of the union of categories, in a stable (sorted) order."""
    keys = sorted(set(reference) | set(current))
    ref = np.array([reference.get(k, 0) for k in keys], dtype=np.int64)
    cur = np.array([current.get(k, 0) for k in keys], dtype=np.int64)
    return keys, ref, cur


# --- multiple testing ----------------------------------------------------------------------------


def holm_reject(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: controls the family-wise error rate at alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    reject = [False] * len(p_values)
    m = len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (m - rank):
            break
        reject[i] = True
    return reject
