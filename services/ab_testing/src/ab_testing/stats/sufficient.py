"""Sufficient statistics of one variant for one metric, maintained incrementally.

The unit of analysis is the randomization unit (the user): a metric's value for a user is the
aggregate of that user's events (0/1 for a binary metric, a sum or a last value for a continuous one,
a numerator and a denominator for a ratio metric). Every statistic of the analysis is computed from
these sums, so analysing an experiment never scans its raw events.

Both classes are immutable; the helpers return new instances:

- ``add(value)`` — a new unit; ``remove(value)`` — the opposite;
- ``update(old, new)`` — a unit's value changed (its old contribution is subtracted, the new one added);
- ``merge(other)`` / ``+`` — two disjoint sets of units (shards, time buckets);
- ``from_values(values)`` — from raw per-unit values (tests, backfills).

CUPED covariates (``MeanStats``): a unit's pre-period covariate ``x`` is tracked by ``n_cov``,
``sum_x``, ``sum_x_sq`` and ``sum_xy`` (over the units that have a covariate). A unit without a
covariate counts as ``x = 0`` in the CUPED regression (as GrowthBook does for users without
pre-exposure data: for revenue-like metrics that is their pre-period value); the adjustment stays
unbiased whatever the covariate, because it is measured before exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np


def _variance(n: float, total: float, total_sq: float) -> float:
    """Sample variance (ddof=1) from n, Σv, Σv²; 0 when undefined or negative by rounding."""
    if n < 2:
        return 0.0
    return max((total_sq - total * total / n) / (n - 1), 0.0)


def _covariance(n: float, sum_a: float, sum_b: float, sum_ab: float) -> float:
    if n < 2:
        return 0.0
    return (sum_ab - sum_a * sum_b / n) / (n - 1)


@dataclass(frozen=True, slots=True)
class MeanStats:
    """Per-unit values of one variant for a binary (0/1) or continuous metric.

    ``n``: units; ``sum``: Σy; ``sum_sq``: Σy². Optional CUPED covariate sums over the units that
    have a covariate: ``n_cov``, ``sum_x`` (Σx), ``sum_x_sq`` (Σx²), ``sum_xy`` (Σxy).
    For a binary metric ``sum`` is the number of successes (and ``sum_sq == sum``).
    """

    n: float = 0
    sum: float = 0.0
    sum_sq: float = 0.0
    n_cov: float = 0
    sum_x: float = 0.0
    sum_x_sq: float = 0.0
    sum_xy: float = 0.0

    # ---- derived -------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sample variance of the per-unit values (ddof=1)."""
        return _variance(self.n, self.sum, self.sum_sq)

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def has_covariate(self) -> bool:
        return self.n_cov > 0

    @property
    def covariate_mean(self) -> float:
        """Mean covariate over all units (units without one count as 0)."""
        return self.sum_x / self.n if self.n > 0 else 0.0

    @property
    def covariate_variance(self) -> float:
        return _variance(self.n, self.sum_x, self.sum_x_sq)

    @property
    def covariance(self) -> float:
        """Sample covariance of (value, covariate) over all units."""
        return _covariance(self.n, self.sum, self.sum_x, self.sum_xy)

    # ---- incremental maintenance ---------------------------------------------------------------
    def add(self, value: float, covariate: float | None = None) -> MeanStats:
        """One more unit with ``value`` (and its pre-period ``covariate`` if known)."""
        y = float(value)
        if covariate is None:
            return MeanStats(
                self.n + 1, self.sum + y, self.sum_sq + y * y,
                self.n_cov, self.sum_x, self.sum_x_sq, self.sum_xy,
            )  # fmt: skip
        x = float(covariate)
        return MeanStats(
            self.n + 1, self.sum + y, self.sum_sq + y * y,
            self.n_cov + 1, self.sum_x + x, self.sum_x_sq + x * x, self.sum_xy + x * y,
        )  # fmt: skip

    def remove(self, value: float, covariate: float | None = None) -> MeanStats:
        """The opposite of :meth:`add` (a unit leaves, e.g. it was excluded)."""
        y = float(value)
        if covariate is None:
            return MeanStats(
                self.n - 1, self.sum - y, self.sum_sq - y * y,
                self.n_cov, self.sum_x, self.sum_x_sq, self.sum_xy,
            )  # fmt: skip
        x = float(covariate)
        return MeanStats(
            self.n - 1, self.sum - y, self.sum_sq - y * y,
            self.n_cov - 1, self.sum_x - x, self.sum_x_sq - x * x, self.sum_xy - x * y,
        )  # fmt: skip

    def update(self, old_value: float, new_value: float, covariate: float | None = None) -> MeanStats:
        """A unit's value changed from ``old_value`` to ``new_value`` (``covariate``: the unit's own)."""
        old, new = float(old_value), float(new_value)
        dxy = 0.0 if covariate is None else float(covariate) * (new - old)
        return MeanStats(
            self.n, self.sum + new - old, self.sum_sq + new * new - old * old,
            self.n_cov, self.sum_x, self.sum_x_sq, self.sum_xy + dxy,
        )  # fmt: skip

    def add_covariate(self, covariate: float, value: float = 0.0) -> MeanStats:
        """An existing unit (current ``value``) gets its pre-period covariate."""
        x = float(covariate)
        return MeanStats(
            self.n, self.sum, self.sum_sq,
            self.n_cov + 1, self.sum_x + x, self.sum_x_sq + x * x, self.sum_xy + x * float(value),
        )  # fmt: skip

    def merge(self, other: MeanStats) -> MeanStats:
        """Statistics of the union of two disjoint sets of units."""
        return MeanStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __add__(self, other: MeanStats) -> MeanStats:
        return self.merge(other)

    # ---- construction / serialization ----------------------------------------------------------
    @classmethod
    def from_values(
        cls, values: Iterable[float], covariates: Iterable[float | None] | None = None
    ) -> MeanStats:
        """From raw per-unit values; ``covariates`` aligned with ``values`` (None/NaN: no covariate)."""
        y = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
        if covariates is None:
            return cls(float(y.size), float(y.sum()), float(y @ y))
        xs = np.array([np.nan if c is None else c for c in covariates], dtype=float)
        if xs.shape != y.shape:
            raise ValueError("covariates must align with values")
        has = ~np.isnan(xs)
        x = np.where(has, xs, 0.0)
        return cls(
            float(y.size), float(y.sum()), float(y @ y),
            float(has.sum()), float(x.sum()), float(x @ x), float(x @ y),
        )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeanStats:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Per-unit numerators and denominators of one variant for a ratio metric (e.g. clicks / views).

    The metric is Σnum / Σden (not the mean of per-unit ratios); its variance is obtained with the
    delta method from the per-unit (co)variances, so units (users) stay the unit of randomization.
    """

    n: float = 0
    sum_num: float = 0.0
    sum_den: float = 0.0
    sum_num_sq: float = 0.0
    sum_den_sq: float = 0.0
    sum_num_den: float = 0.0

    @property
    def ratio(self) -> float:
        return self.sum_num / self.sum_den if self.sum_den != 0 else 0.0

    mean = ratio

    @property
    def variance_of_ratio(self) -> float:
        """Delta-method variance of Σnum/Σden:
        (s²_num - 2·R·s_num,den + R²·s²_den) / (n · mean_den²)."""
        if self.n < 2 or self.sum_den == 0:
            return 0.0
        r = self.ratio
        mean_den = self.sum_den / self.n
        var_num = _variance(self.n, self.sum_num, self.sum_num_sq)
        var_den = _variance(self.n, self.sum_den, self.sum_den_sq)
        cov = _covariance(self.n, self.sum_num, self.sum_den, self.sum_num_den)
        return max((var_num - 2 * r * cov + r * r * var_den) / (self.n * mean_den * mean_den), 0.0)

    @property
    def std(self) -> float:
        """Per-unit standard deviation of the linearized ratio (√(n·Var(R)))."""
        return float(np.sqrt(self.variance_of_ratio * self.n))

    def add(self, numerator: float, denominator: float) -> RatioStats:
        a, b = float(numerator), float(denominator)
        return RatioStats(
            self.n + 1, self.sum_num + a, self.sum_den + b,
            self.sum_num_sq + a * a, self.sum_den_sq + b * b, self.sum_num_den + a * b,
        )  # fmt: skip

    def remove(self, numerator: float, denominator: float) -> RatioStats:
        a, b = float(numerator), float(denominator)
        return RatioStats(
            self.n - 1, self.sum_num - a, self.sum_den - b,
            self.sum_num_sq - a * a, self.sum_den_sq - b * b, self.sum_num_den - a * b,
        )  # fmt: skip

    def update(
        self, old_numerator: float, old_denominator: float, new_numerator: float, new_denominator: float
    ) -> RatioStats:
        """A unit's (numerator, denominator) changed: subtract the old contribution, add the new."""
        a0, b0, a1, b1 = map(float, (old_numerator, old_denominator, new_numerator, new_denominator))
        return RatioStats(
            self.n,
            self.sum_num + a1 - a0,
            self.sum_den + b1 - b0,
            self.sum_num_sq + a1 * a1 - a0 * a0,
            self.sum_den_sq + b1 * b1 - b0 * b0,
            self.sum_num_den + a1 * b1 - a0 * b0,
        )

    def merge(self, other: RatioStats) -> RatioStats:
        return RatioStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __add__(self, other: RatioStats) -> RatioStats:
        return self.merge(other)

    @classmethod
    def from_values(cls, numerators: Iterable[float], denominators: Iterable[float]) -> RatioStats:
        a = np.asarray(list(numerators) if not isinstance(numerators, np.ndarray) else numerators, float)
        b = np.asarray(
            list(denominators) if not isinstance(denominators, np.ndarray) else denominators, float
        )
        if a.shape != b.shape:
            raise ValueError("numerators and denominators must align")
        return cls(float(a.size), float(a.sum()), float(b.sum()), float(a @ a), float(b @ b), float(a @ b))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioStats:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
