"""Sample ratio mismatch: chi-square goodness of fit of the observed units per variant against the
configured weights; flagged when p < 0.001 (an SRM means the assignment or the logging is broken,
and the results should not be trusted)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import special

SRM_THRESHOLD = 0.001


@dataclass(frozen=True, slots=True)
class SRMResult:
    chi2: float
    p_value: float
    flagged: bool
    df: int
    observed: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    threshold: float = SRM_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not math.isfinite(self.chi2):
            data["chi2"] = None
        data["expected"] = [e if math.isfinite(e) else None for e in self.expected]
        return data


def srm_check(
    observed_counts: Sequence[float], expected_weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """``observed_counts[i]`` units in variant ``i`` whose configured weight is ``expected_weights[i]``
    (weights need not sum to 1; they are normalized). A variant with weight 0 but units makes the
    mismatch certain (chi2 = inf, p = 0)."""
    if len(observed_counts) != len(expected_weights):
        raise ValueError("observed_counts and expected_weights must have the same length")
    if any(w < 0 for w in expected_weights) or sum(expected_weights) <= 0:
        raise ValueError("weights must be non-negative and not all 0")
    observed = [float(c) for c in observed_counts]
    total = sum(observed)
    wsum = float(sum(expected_weights))
    expected = [total * w / wsum for w in expected_weights]
    chi2 = 0.0
    cells = 0
    for o, e in zip(observed, expected, strict=True):
        if e > 0:
            chi2 += (o - e) ** 2 / e
            cells += 1
        elif o > 0:
            chi2 = math.inf
    df = max(cells - 1, 0)
    if total <= 0 or df == 0:
        p = 0.0 if math.isinf(chi2) else 1.0
    elif math.isinf(chi2):
        p = 0.0
    else:
        p = float(special.chdtrc(df, chi2))
    return SRMResult(chi2, p, p < threshold, df, observed, expected, threshold)
