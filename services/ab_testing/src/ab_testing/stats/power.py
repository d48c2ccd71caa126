"""Power analysis before the start: required sample size per variant and minimum detectable effect.

Normal approximation for the tests the analysis runs, equal allocation:

- binary (two-proportion z-test, pooled variance under H0, unpooled under H1 — Fleiss):
  ``n = (z_alpha·√(2·p̄·(1 - p̄)) + z_β·√(p1·(1 - p1) + p2·(1 - p2)))² / δ²`` with ``p̄ = (p1 + p2)/2``
  (identical to statsmodels' ``samplesize_proportions_2indep_onetail``);
- continuous and ratio (Welch / delta-method z): ``n = 2·(z_alpha + z_β)²·sigma² / δ²`` — ``sigma`` is the
  per-unit standard deviation (for a ratio metric, of the linearized ratio: ``RatioStats.std``);
  identical to statsmodels' ``NormalIndPower`` with effect size ``δ/sigma``.

``z_alpha = Φ⁻¹(1 - alpha/2)`` for a two-sided test (``Φ⁻¹(1 - alpha)`` one-sided), ``z_β = Φ⁻¹(power)``.
With more than 2 variants, alpha is Bonferroni-split over the ``variants - 1`` comparisons with the
control. ``mde`` is relative to ``baseline_mean`` unless ``relative=False``.
"""

from __future__ import annotations

import math

from scipy import optimize, special

METRIC_TYPES = ("binary", "continuous", "ratio")


def _z_alpha(alpha: float, variants: int, alternative: str) -> float:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if variants < 2:
        raise ValueError("at least 2 variants")
    a = alpha / (variants - 1)
    if alternative == "two-sided":
        a /= 2
    elif alternative not in ("larger", "smaller", "one-sided"):
        raise ValueError("alternative must be two-sided, larger or smaller")
    return float(special.ndtri(1 - a))


def _z_beta(power: float) -> float:
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    return float(special.ndtri(power))


def _kind(metric_type: str) -> str:
    kind = {"binary": "binary", "proportion": "binary", "conversion": "binary", "mean": "continuous"}.get(
        metric_type, metric_type
    )
    if kind not in METRIC_TYPES:
        raise ValueError(f"unknown metric type {metric_type!r}")
    return kind


def _std_required(std: float | None) -> float:
    if std is None or not std > 0:
        raise ValueError("std (per-unit standard deviation) is required for continuous and ratio metrics")
    return float(std)


def _binary_terms(p1: float, delta: float) -> tuple[float, float]:
    p2 = p1 + delta
    if not (0 < p1 < 1 and 0 < p2 < 1):
        raise ValueError("binary baseline and baseline + effect must be within (0, 1)")
    pbar = (p1 + p2) / 2
    return math.sqrt(2 * pbar * (1 - pbar)), math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))


def required_sample_size(
    metric_type: str,
    baseline_mean: float,
    mde: float,
    *,
    relative: bool = True,
    std: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    alternative: str = "two-sided",
) -> int:
    """Units needed per variant to detect an effect of ``mde`` with probability ``power``."""
    kind = _kind(metric_type)
    delta = mde * baseline_mean if relative else mde
    if delta == 0 or not math.isfinite(delta):
        raise ValueError("the minimum detectable effect must be non-zero")
    za, zb = _z_alpha(alpha, variants, alternative), _z_beta(power)
    if kind == "binary":
        s0, s1 = _binary_terms(baseline_mean, delta)
        n = ((za * s0 + zb * s1) / delta) ** 2
    else:
        sigma = _std_required(std)
        n = 2 * ((za + zb) * sigma / delta) ** 2
    return math.ceil(n - 1e-9)


def minimum_detectable_effect(
    metric_type: str,
    baseline_mean: float,
    n_per_variant: float,
    *,
    relative: bool = True,
    std: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    alternative: str = "two-sided",
) -> float:
    """The smallest (positive) effect detected with probability ``power`` with ``n_per_variant``
    units per variant; relative to ``baseline_mean`` unless ``relative=False``."""
    kind = _kind(metric_type)
    if not n_per_variant > 0:
        raise ValueError("n_per_variant must be positive")
    za, zb = _z_alpha(alpha, variants, alternative), _z_beta(power)
    root_n = math.sqrt(n_per_variant)
    if kind == "binary":
        p1 = baseline_mean
        if not 0 < p1 < 1:
            raise ValueError("binary baseline must be within (0, 1)")

        def gap(delta: float) -> float:
            s0, s1 = _binary_terms(p1, delta)
            return delta * root_n - (za * s0 + zb * s1)

        upper = (1 - p1) * (1 - 1e-12)
        if gap(upper) < 0:
            raise ValueError("sample size too small to detect any effect on this baseline")
        delta = float(optimize.brentq(gap, 1e-15, upper, xtol=1e-15, rtol=1e-12))
    else:
        delta = (za + zb) * _std_required(std) * math.sqrt(2 / n_per_variant)
    if not relative:
        return delta
    if baseline_mean == 0:
        raise ValueError("a relative effect needs a non-zero baseline")
    return delta / abs(baseline_mean)


def statistical_power(
    metric_type: str,
    baseline_mean: float,
    mde: float,
    n_per_variant: float,
    *,
    relative: bool = True,
    std: float | None = None,
    alpha: float = 0.05,
    variants: int = 2,
    alternative: str = "two-sided",
) -> float:
    """Probability of detecting ``mde`` with ``n_per_variant`` units per variant (the far tail of a
    two-sided test is ignored, as in the sample-size formula)."""
    kind = _kind(metric_type)
    delta = abs(mde * baseline_mean if relative else mde)
    za = _z_alpha(alpha, variants, alternative)
    root_n = math.sqrt(n_per_variant)
    if kind == "binary":
        signed = mde * baseline_mean if relative else mde
        s0, s1 = _binary_terms(baseline_mean, signed)
        return float(special.ndtr((delta * root_n - za * s0) / s1))
    sigma = _std_required(std)
    return float(special.ndtr(delta * root_n / (sigma * math.sqrt(2)) - za))
