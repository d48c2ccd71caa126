"""Reference and current distributions of one column, as shares per bin or category (what the
report plots): numeric columns over the reference's pinned bins (or its few exact values),
categorical ones as their most frequent categories plus the rest."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from model_registry.monitoring import drift as st
from model_registry.monitoring.columns import label_counts, to_numeric
from model_registry.monitoring.profile import OTHER, ColumnProfile
from model_registry.monitoring.svg import fmt

TOP_CATEGORIES = 8
REST = "(other)"


@dataclass(frozen=True)
class Distribution:
    groups: list[str]  # bin or category labels
    reference: list[float]  # shares of the non-missing values
    current: list[float]
    edges: list[str] | None = None  # labels between adjacent bins (numeric bins only)
    current_count: int = 0
    summary: list[tuple[str, float | None, float | None]] = field(default_factory=list)


def _shares(counts: list[int] | np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _top(reference: Mapping[str, int], current: Counter[str], numeric: bool = False) -> Distribution:
    """The categories with the largest share on either side (at most TOP_CATEGORIES), the rest
    (and the reference's own folded remainder) as one group."""
    ref_total, cur_total = sum(reference.values()) or 1, sum(current.values()) or 1
    keys = (set(reference) | set(current)) - {OTHER}
    ranked = sorted(keys, key=lambda k: (-max(reference.get(k, 0) / ref_total, current[k] / cur_total), k))
    kept = ranked[:TOP_CATEGORIES] if len(ranked) > TOP_CATEGORIES + 1 else ranked
    if numeric:
        kept.sort(key=float)
    ref = [reference.get(k, 0) for k in kept]
    cur = [current[k] for k in kept]
    rest_ref, rest_cur = sum(reference.values()) - sum(ref), sum(current.values()) - sum(cur)
    if rest_ref or rest_cur:
        kept, ref, cur = [*kept, REST], [*ref, rest_ref], [*cur, rest_cur]
    return Distribution(kept, _shares(ref), _shares(cur), current_count=sum(current.values()))


def _bins(col: ColumnProfile, present: np.ndarray) -> Distribution:
    edges = col.bin_edges
    if not edges:
        return Distribution(["all"], [1.0 if col.count else 0.0], [1.0 if present.size else 0.0])
    labels = [f"≤ {fmt(edges[0])}"]
    labels += [f"({fmt(a)}, {fmt(b)}]" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {fmt(edges[-1])}")
    current = st.bin_counts(present, edges)
    return Distribution(
        labels, _shares(col.bin_counts), _shares(current), [fmt(e) for e in edges], int(present.size)
    )


def _summary(col: ColumnProfile, present: np.ndarray) -> list[tuple[str, float | None, float | None]]:
    some = present.size > 0
    return [
        ("mean", col.mean, float(present.mean()) if some else None),
        ("std", col.std, float(present.std()) if some else None),
        ("median", col.quantiles.get("0.5"), float(np.median(present)) if some else None),
    ]


def _numbers(pairs: Iterable[tuple[float, int]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for value, count in pairs:
        out[fmt(float(value), 6)] += int(count)
    return out


def _fold(col: ColumnProfile, counts: Counter[str]) -> Counter[str]:
    """Categories the reference folded into its remainder are folded the same way here."""
    if not col.categories_truncated:
        return counts
    folded: Counter[str] = Counter()
    for key, n in counts.items():
        folded[key if key in col.frequencies else OTHER] += n
    return folded


def distribution(col: ColumnProfile, values: ArrayLike) -> Distribution:
    if col.kind != "numeric":
        counts, _ = label_counts(col.name, values, col.kind)
        return _top(col.frequencies, _fold(col, counts))
    x = to_numeric(col.name, values)
    present = x[~np.isnan(x)]
    if col.value_counts is not None:
        current = _numbers(zip(*np.unique(present, return_counts=True), strict=True))
        found = _top(_numbers(col.value_counts), current, numeric=True)
    else:
        found = _bins(col, present)
    return Distribution(
        found.groups, found.reference, found.current, found.edges, int(present.size), _summary(col, present)
    )
