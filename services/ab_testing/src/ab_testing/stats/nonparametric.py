"""Mann-Whitney U test on raw per-unit values — on request only (it needs the values, not sums)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class MannWhitneyResult:
    """``statistic``: U of the treatment (pairs with treatment > control, ties counting ½);
    ``prob_superiority`` = U / (n_c·n_t), an estimate of P(treatment > control) + ½·P(tie);
    ``p_value``: two-sided (scipy's ``mannwhitneyu``: exact for small samples without ties,
    else the normal approximation with tie and continuity corrections)."""

    statistic: float
    p_value: float
    n_control: int
    n_treatment: int
    prob_superiority: float
    test: str = "mann_whitney_u"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("statistic", "p_value", "prob_superiority"):
            if not math.isfinite(data[key]):
                data[key] = None
        return data


def mann_whitney(
    values_control: Sequence[float] | np.ndarray,
    values_treatment: Sequence[float] | np.ndarray,
    method: str = "auto",
) -> MannWhitneyResult:
    c = np.asarray(values_control, dtype=float)
    t = np.asarray(values_treatment, dtype=float)
    if c.size == 0 or t.size == 0:
        return MannWhitneyResult(math.nan, math.nan, int(c.size), int(t.size), math.nan)
    from scipy import stats as sps  # on first use: scipy.stats costs ~2 s of service start-up

    res = sps.mannwhitneyu(t, c, alternative="two-sided", method=method)
    u = float(res.statistic)
    return MannWhitneyResult(u, float(res.pvalue), int(c.size), int(t.size), u / (c.size * t.size))
