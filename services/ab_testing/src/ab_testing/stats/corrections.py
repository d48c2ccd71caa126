"""Multiple-testing correction across variants x metrics.

- ``holm``: Holm-Bonferroni step-down, controls the family-wise error rate;
- ``bh``: Benjamini-Hochberg step-up, controls the false discovery rate.

Adjusted p-values (as statsmodels' ``multipletests``): monotone in the raw p-values and capped at 1.
``None`` (or NaN) entries — comparisons without a p-value — are left out of the family and returned
as ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METHODS = ("holm", "bh")
_ALIASES = {
    "holm": "holm",
    "holm-bonferroni": "holm",
    "bh": "bh",
    "fdr_bh": "bh",
    "benjamini-hochberg": "bh",
}


def adjust_pvalues(pvalues: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Adjusted p-values in the input order."""
    kind = _ALIASES.get(method.lower())
    if kind is None:
        raise ValueError(f"unknown correction method {method!r} (use one of {', '.join(METHODS)})")
    present = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(present)
    if m == 0:
        return out
    p = np.array([pvalues[i] for i in present], dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be in [0, 1]")
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if kind == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        scaled = ranked * m / np.arange(1, m + 1)
        adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.minimum(adjusted, 1.0)
    result = np.empty(m)
    result[order] = adjusted
    for i, value in zip(present, result, strict=True):
        out[i] = float(value)
    return out
