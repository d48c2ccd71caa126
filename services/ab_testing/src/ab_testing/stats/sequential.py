"""Sequential testing: always-valid p-values and confidence sequences (mixture SPRT).

Method (Johari, Pekelis, Walsh 2017, "Always valid inference"; the normal-mixture form used by
Eppo, Statsig and GrowthBook): the estimated difference of means ``d`` is approximately
``N(δ, V)`` with ``V = Var(mean_t) + Var(mean_c)``. Mixing the likelihood ratio of ``δ = δ0``
against ``δ`` over a normal mixing distribution ``δ - δ0 ~ N(0, τ²)`` gives

    Λ(δ0) = √(V / (V + τ²)) · exp( τ²·(d - δ0)² / (2·V·(V + τ²)) )

which is a nonnegative martingale under ``δ = δ0``; by Ville's inequality
``P(∃ n: Λ_n ≥ 1/alpha) ≤ alpha`` however often (and whenever) the results are looked at. Hence

- always-valid p-value: ``p = min(1, 1/Λ(0))`` (a caller may keep the running minimum over looks,
  which is still valid);
- confidence sequence: ``{δ0 : Λ(δ0) < 1/alpha}`` = ``d ± √( V·(V+τ²)/τ² · (2·ln(1/alpha) + ln((V+τ²)/V)) )``.

Mixing variance τ² (in squared metric units of the difference): either given (``tau``) or tuned
to a planned sample size ``N*`` per variant: ``τ² = r*(alpha) · (sigma²_t + sigma²_c) / N*``,
where ``sigma²`` are the per-unit variances and ``r*`` solves ``r = 2·ln(1/alpha) + ln(1 + r)``
(≈ 8.2 at alpha = 0.05) — the τ² that makes the confidence sequence narrowest when each variant
has ``N*`` units (Howard et al. 2021; GrowthBook's "tuning parameter"). The service passes the
experiment's required sample size as ``N*``; without one ``DEFAULT_PLANNED_N`` is used. Validity
holds for any τ fixed in advance (the per-unit variances are plug-in estimates, as in the mSPRT
literature); τ only trades power early against power late.
"""

from __future__ import annotations

import math
from functools import lru_cache

DEFAULT_PLANNED_N = 10_000


@lru_cache(maxsize=64)
def optimal_ratio(alpha: float) -> float:
    """r* solving ``r = 2·ln(1/alpha) + ln(1 + r)``: with ``τ² = r*·V`` the confidence sequence is
    narrowest at variance ``V``."""
    two_l = 2.0 * math.log(1.0 / alpha)
    r = two_l + 1.0
    for _ in range(200):
        nxt = two_l + math.log1p(r)
        if abs(nxt - r) < 1e-13:
            return nxt
        r = nxt
    return r


def mixing_variance(unit_variance_sum: float, planned_n: float, alpha: float) -> float:
    """τ² tuned to ``planned_n`` units per variant; ``unit_variance_sum`` = sigma²_t + sigma²_c."""
    return optimal_ratio(alpha) * unit_variance_sum / planned_n


def log_mixture_likelihood_ratio(diff: float, variance: float, tau2: float, null: float = 0.0) -> float:
    """ln Λ(null) for the estimated difference ``diff`` with variance ``variance``."""
    total = variance + tau2
    return 0.5 * math.log(variance / total) + tau2 * (diff - null) ** 2 / (2.0 * variance * total)


def always_valid_p_value(diff: float, variance: float, tau2: float) -> float:
    """min(1, 1/Λ(0))."""
    if variance <= 0:
        return 1.0 if diff == 0 else 0.0
    log_lr = log_mixture_likelihood_ratio(diff, variance, tau2)
    return 1.0 if log_lr <= 0 else math.exp(-log_lr)


def confidence_sequence_half_width(variance: float, tau2: float, alpha: float) -> float:
    if variance <= 0:
        return 0.0
    total = variance + tau2
    return math.sqrt(variance * total / tau2 * (2.0 * math.log(1.0 / alpha) + math.log(total / variance)))


def confidence_sequence(diff: float, variance: float, tau2: float, alpha: float) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence for the difference at this look."""
    h = confidence_sequence_half_width(variance, tau2, alpha)
    return (diff - h, diff + h)
