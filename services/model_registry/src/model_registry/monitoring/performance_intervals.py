"""Confidence intervals for the live performance metrics (numpy/scipy only).

Wilson score intervals for proportions, DeLong for a binary ROC AUC, and a seeded percentile
bootstrap (bounded number of resamples) for everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# bootstrap work is bounded: resamples x rows stays under this many element reads per metric
BOOTSTRAP_BUDGET = 20_000_000
MIN_BOOTSTRAP_RESAMPLES = 50


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str
    confidence: float
    resamples: int | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "low": self.low,
            "high": self.high,
            "method": self.method,
            "confidence": self.confidence,
        }
        if self.resamples is not None:
            out["resamples"] = self.resamples
        return out


def _z(confidence: float) -> float:
    from scipy import stats  # on first use: scipy.stats costs ~2 s of service start-up

    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson(successes: int, trials: int, confidence: float) -> Interval | None:
    """Wilson score interval for successes/trials (None when there are no trials)."""
    if trials <= 0:
        return None
    z = _z(confidence)
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * float(np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "wilson", confidence)


def _midranks(x: np.ndarray) -> np.ndarray:
    from scipy import stats

    return np.asarray(stats.rankdata(x, method="average"), dtype=np.float64)


def auc_mann_whitney(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic with average ranks for ties (equals sklearn's)."""
    m = int(positive.sum())
    n = positive.size - m
    ranks = _midranks(scores)
    return float((ranks[positive].sum() - m * (m + 1) / 2.0) / (m * n))


def delong(scores: np.ndarray, positive: np.ndarray, confidence: float) -> tuple[float, Interval]:
    """Binary ROC AUC with its DeLong (1988) normal interval, clipped to [0, 1]."""
    pos, neg = scores[positive], scores[~positive]
    m, n = pos.size, neg.size
    all_ranks = _midranks(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - _midranks(pos)) / n
    v01 = 1.0 - (all_ranks[m:] - _midranks(neg)) / m
    auc = float(v10.mean())
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    half = _z(confidence) * float(np.sqrt(var))
    return auc, Interval(max(0.0, auc - half), min(1.0, auc + half), "delong", confidence)


def resample_count(n_rows: int, requested: int, cost_per_row: int = 1) -> int:
    """How many bootstrap resamples fit the work budget (never more than requested)."""
    fit = BOOTSTRAP_BUDGET // max(1, n_rows * cost_per_row)
    return int(max(1, min(requested, max(MIN_BOOTSTRAP_RESAMPLES, fit))))


def percentile(samples: np.ndarray, confidence: float, resamples: int) -> Interval | None:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Interval(float(low), float(high), "bootstrap_percentile", confidence, resamples)


def bootstrap_rows(
    n_rows: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> Interval | None:
    """Row bootstrap: `statistic` maps an index matrix (chunk, n_rows) to one value per row."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 2_000_000 // max(1, n_rows)))
    values: list[np.ndarray] = []
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        values.append(np.asarray(statistic(rng.integers(0, n_rows, size=(size, n_rows))), dtype=np.float64))
        done += size
    return percentile(np.concatenate(values), confidence, resamples)


def bootstrap_confusion(
    confusion: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> Interval | None:
    """Bootstrap of a confusion-matrix metric: resampling rows is a multinomial draw of the cells,
    so the cost does not grow with the number of rows."""
    total = int(confusion.sum())
    if total == 0:
        return None
    rng = np.random.default_rng(seed)
    k = confusion.shape[0]
    draws = rng.multinomial(total, confusion.ravel() / total, size=resamples).reshape(resamples, k, k)
    return percentile(np.asarray(statistic(draws), dtype=np.float64), confidence, resamples)
