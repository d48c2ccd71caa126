"""Drift of a current window against a reference profile: per-feature results and a dataset verdict.

Default method per column (after Evidently's table, with the two-sample chi-square):
reference <= 1000 non-missing values: KS for numeric with > 5 distinct values, else chi-square;
larger references: Wasserstein/std for numeric with > 5 distinct values, else Jensen-Shannon.
Dataset verdict: Holm over the p-value tests at `alpha` (any rejection = drift), and for
distance methods the share rule (drifted share >= `drift_share`); either one makes it drift.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model_registry.monitoring import drift as st
from model_registry.monitoring.columns import label_counts, to_numeric
from model_registry.monitoring.profile import OTHER, ColumnProfile, Profile

Binning = Literal["quantile", "evidently"]
SMALL_REFERENCE = 1000  # Evidently: references up to this size get p-value tests
FEW_DISTINCT = 5  # numeric columns with at most this many distinct values are treated as categories
INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True)
class FeatureConfig:
    method: str | None = None
    threshold: float | None = None
    binning: Binning | None = None


@dataclass(frozen=True)
class DriftConfig:
    features: Mapping[str, FeatureConfig] = field(default_factory=dict)
    min_rows: int = 30  # fewer non-missing values in either side -> insufficient data
    alpha: float = 0.05  # family-wise level of the dataset verdict over the p-value tests
    drift_share: float = 0.5  # share of distance-method features drifted that makes the dataset drift
    binning: Binning = "quantile"


class DriftConfigError(ValueError):
    """A drift configuration that cannot be applied to the profile; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _feature_problems(profile: Profile, name: str, feature: FeatureConfig) -> list[str]:
    col = profile.columns.get(name)
    if col is None:
        return [f"feature {name!r} is not in the reference profile"]
    problems: list[str] = []
    if feature.method is not None and feature.method not in st.METHODS:
        known = ", ".join(st.METHODS)
        problems.append(f"feature {name!r}: unknown method {feature.method!r} (one of {known})")
    if feature.method in (st.KS, st.WASSERSTEIN) and col.kind != "numeric":
        problems.append(f"feature {name!r}: {feature.method} needs a numeric column, not {col.kind}")
    if feature.threshold is not None and not (math.isfinite(feature.threshold) and feature.threshold > 0):
        problems.append(f"feature {name!r}: threshold must be a positive number")
    if feature.binning not in (None, "quantile", "evidently"):
        problems.append(f"feature {name!r}: binning must be 'quantile' or 'evidently'")
    return problems


def validate_config(profile: Profile, config: DriftConfig) -> None:
    """Raise DriftConfigError naming every problem (for the API layer to render as a 422)."""
    problems = [p for name, f in config.features.items() for p in _feature_problems(profile, name, f)]
    if not 0 < config.alpha < 1:
        problems.append("alpha must be between 0 and 1")
    if not 0 < config.drift_share <= 1:
        problems.append("drift_share must be in (0, 1]")
    if config.min_rows < 1:
        problems.append("min_rows must be at least 1")
    if config.binning not in ("quantile", "evidently"):
        problems.append("binning must be 'quantile' or 'evidently'")
    if problems:
        raise DriftConfigError(problems)


@dataclass
class _Current:
    values: NDArray[np.float64] | None  # numeric, missing removed
    counts: Counter[str] | None  # categorical
    missing: int

    @property
    def count(self) -> int:
        return int(self.values.size) if self.values is not None else sum((self.counts or Counter()).values())


def _current(col: ColumnProfile, values: ArrayLike) -> _Current:
    if col.kind == "numeric":
        x = to_numeric(col.name, values)
        present = x[~np.isnan(x)]
        return _Current(present, None, int(x.size - present.size))
    counts, missing = label_counts(col.name, values, col.kind)
    if col.categories_truncated:
        known = set(col.frequencies)
        folded: Counter[str] = Counter()
        for key, n in counts.items():
            folded[key if key in known else OTHER] += n
        counts = folded
    return _Current(None, counts, missing)


def _numeric_counts(col: ColumnProfile, cur: NDArray[np.float64]) -> Counter[str] | None:
    """Exact value frequencies as categories, when the reference has few distinct values."""
    if col.value_counts is None:
        return None
    return Counter({repr(float(k)): int(c) for k, c in zip(*np.unique(cur, return_counts=True), strict=True)})


def _distinct(col: ColumnProfile, cur: _Current) -> int:
    if col.kind != "numeric":
        return len(set(col.frequencies) | set(cur.counts or ()))
    if col.value_counts is None:
        return FEW_DISTINCT + SMALL_REFERENCE  # more than SMALL_DISTINCT in the reference alone
    assert cur.values is not None
    return len({v for v, _ in col.value_counts} | set(np.unique(cur.values).tolist()))


def default_method(col: ColumnProfile, cur: _Current) -> str:
    small = col.count <= SMALL_REFERENCE
    if col.kind == "numeric" and _distinct(col, cur) > FEW_DISTINCT:
        return st.KS if small else st.WASSERSTEIN
    return st.CHI_SQUARE if small else st.JENSEN_SHANNON


def _categorical(method: str, ref: dict[str, int], cur: Counter[str], threshold: float) -> st.StatResult:
    _, r, c = st.aligned_counts(ref, dict(cur))
    return _on_counts(method, r, c, threshold)


def _on_counts(method: str, r: ArrayLike, c: ArrayLike, threshold: float) -> st.StatResult:
    if method == st.CHI_SQUARE:
        return st.chi_square_two_sample(r, c, threshold)
    if method == st.PSI:
        return st.psi_from_shares(st.shares(r), st.shares(c), threshold)
    if method == st.JENSEN_SHANNON:
        return st.js_from_shares(st.shares(r), st.shares(c), threshold)
    raise ValueError(f"method {method!r} needs numeric values")


def _evidently_categorical(
    method: str, col: ColumnProfile, ref: dict[str, int], cur: _Current, threshold: float
) -> st.StatResult:
    """Evidently's categorical shares: the union of categories, missing values in the denominator."""
    _, r, c = st.aligned_counts(ref, dict(cur.counts or Counter()))
    rs, cs = st.shares(r, col.rows), st.shares(c, cur.count + cur.missing)
    if method == st.PSI:
        return st.psi_from_shares(rs, cs, threshold)
    return st.js_from_shares(rs, cs, threshold)


def _statistic(
    col: ColumnProfile, cur: _Current, method: str, threshold: float, binning: Binning
) -> st.StatResult:
    evidently = binning == "evidently" and method in (st.PSI, st.JENSEN_SHANNON)
    if col.kind != "numeric":
        assert cur.counts is not None
        if evidently:
            return _evidently_categorical(method, col, col.frequencies, cur, threshold)
        return _categorical(method, col.frequencies, cur.counts, threshold)
    assert cur.values is not None
    if method == st.KS:
        return st.ks_test(col.sample_array(), cur.values, threshold)
    if method == st.WASSERSTEIN:
        return st.wasserstein_std(col.sample_array(), cur.values, threshold)
    small = _numeric_counts(col, cur.values)
    if small is not None and col.value_counts is not None:
        ref = {repr(float(k)): int(c) for k, c in col.value_counts}
        if evidently:
            return _evidently_categorical(method, col, ref, _Current(None, small, cur.missing), threshold)
        return _categorical(method, ref, small, threshold)
    if evidently:
        rs, cs = st.sturges_shares(col.sample_array(), cur.values)
        return (
            st.psi_from_shares(rs, cs, threshold)
            if method == st.PSI
            else st.js_from_shares(rs, cs, threshold)
        )
    return _on_counts(method, col.bin_counts, st.bin_counts(cur.values, col.bin_edges), threshold)


def _uses_sample(col: ColumnProfile, method: str) -> bool:
    return (
        col.kind == "numeric"
        and col.sampled
        and (method in (st.KS, st.WASSERSTEIN) or col.value_counts is None)
    )


def feature_drift(col: ColumnProfile, values: ArrayLike, config: DriftConfig) -> dict[str, Any]:
    cur = _current(col, values)
    feature = config.features.get(col.name, FeatureConfig())
    method = feature.method or default_method(col, cur)
    threshold = feature.threshold if feature.threshold is not None else st.DEFAULT_THRESHOLDS[method]
    rows = cur.count + cur.missing
    out: dict[str, Any] = {
        "feature": col.name,
        "kind": col.kind,
        "method": method,
        "threshold": threshold,
        "reference_count": col.count,
        "current_count": cur.count,
        "reference_missing_share": col.missing / col.rows if col.rows else 0.0,
        "missing_share": cur.missing / rows if rows else 0.0,
        "reference_sampled": _uses_sample(col, method),
    }
    if min(cur.count, col.count) < config.min_rows:
        return {**out, "status": INSUFFICIENT, "statistic": None, "p_value": None, "drifted": False}
    res = _statistic(col, cur, method, threshold, feature.binning or config.binning)
    return {**out, "status": "ok", "statistic": res.statistic, "p_value": res.p_value, "drifted": res.drifted}


def dataset_verdict(features: list[dict[str, Any]], config: DriftConfig) -> dict[str, Any]:
    evaluated = [f for f in features if f["status"] == "ok"]
    tests = [f for f in evaluated if f["p_value"] is not None]
    distances = [f for f in evaluated if f["p_value"] is None]
    rejected = st.holm_reject([f["p_value"] for f in tests], config.alpha)
    share = sum(f["drifted"] for f in distances) / len(distances) if distances else 0.0
    drifted = any(rejected) or (bool(distances) and share >= config.drift_share)
    return {
        "status": "ok" if evaluated else INSUFFICIENT,
        "drifted": bool(evaluated) and drifted,
        "rule": "holm(p-value tests) or share(distance methods)",
        "alpha": config.alpha,
        "drift_share_threshold": config.drift_share,
        "p_value_tests": len(tests),
        "rejected_after_holm": [f["feature"] for f, r in zip(tests, rejected, strict=True) if r],
        "distance_tests": len(distances),
        "distance_drifted_share": share,
        "drifted_features": [f["feature"] for f in evaluated if f["drifted"]],
        "evaluated_features": len(evaluated),
    }


def drift(
    profile: Profile, current: Mapping[str, ArrayLike], config: DriftConfig | None = None
) -> dict[str, Any]:
    """Per-feature drift of `current` (column -> values) against `profile`, with the dataset verdict."""
    config = config or DriftConfig()
    validate_config(profile, config)
    features = [
        feature_drift(col, current[name], config) for name, col in profile.columns.items() if name in current
    ]
    return {
        "features": features,
        "dataset": dataset_verdict(features, config),
        "unknown_columns": sorted(set(current) - set(profile.columns)),
        "missing_columns": sorted(set(profile.columns) - set(current)),
    }
