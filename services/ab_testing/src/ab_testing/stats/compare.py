"""One variant against the control for one metric, from sufficient statistics.

Tests (``Comparison.test``):

- ``two_proportion_z`` (binary): z = d / √(p̄(1 - p̄)(1/n_c + 1/n_t)) with the pooled proportion p̄;
  z² is the Pearson chi-square of the 2x2 table without continuity correction (``chi2``). The
  confidence interval is Wald's, with unpooled variances p(1 - p)/n.
- ``welch_t`` (continuous): Welch's unequal-variance t-test, Welch-Satterthwaite degrees of freedom;
  the interval uses the same t quantile.
- ``delta_method_z`` (ratio Σnum/Σden per variant): z-test on the difference of ratios with
  delta-method variances (``RatioStats.variance_of_ratio``).
- ``cuped_welch_t`` (binary or continuous with pre-period covariates in both variants and
  ``cuped=True``): Welch's t on CUPED-adjusted values (see ``cuped``); the unadjusted figures are
  kept in ``cuped``.

Relative lift ``mean_t / mean_c - 1``, its interval by the delta method for a ratio of independent
means: Var ≈ Var(mean_t)/mean_c² + mean_t²·Var(mean_c)/mean_c⁴ (same critical value as the
absolute interval). Sequential (``sequential``): mSPRT, see ``ab_testing.stats.sequential``.
Bayesian (``bayesian``): see ``ab_testing.stats.bayesian``.

Everything is O(1) in the number of units: a comparison costs tens of microseconds (a few hundred
for a binary metric's Beta integrals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from scipy import special

from ab_testing.stats import bayesian as bayes
from ab_testing.stats import sequential as seq
from ab_testing.stats.corrections import adjust_pvalues
from ab_testing.stats.cuped import cuped_adjust, cuped_theta, has_covariates, pooled_covariate_mean
from ab_testing.stats.sufficient import MeanStats, RatioStats

METRIC_TYPES = ("binary", "continuous", "ratio")
DIRECTIONS = ("higher", "lower")
_TYPE_ALIASES = {"proportion": "binary", "conversion": "binary", "mean": "continuous"}


def metric_kind(metric_type: str) -> str:
    kind = _TYPE_ALIASES.get(metric_type, metric_type)
    if kind not in METRIC_TYPES:
        raise ValueError(f"unknown metric type {metric_type!r} (use one of {', '.join(METRIC_TYPES)})")
    return kind


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """``sum``: successes (binary), Σvalue (continuous) or Σnumerator (ratio);
    ``denominator_sum``: Σdenominator (ratio only); ``std``: per-unit standard deviation
    (binary: √(p(1 - p)); ratio: of the linearized ratio); ``adjusted_mean``: CUPED only."""

    n: float
    mean: float
    std: float
    sum: float
    denominator_sum: float | None = None
    adjusted_mean: float | None = None


@dataclass(frozen=True, slots=True)
class ChiSquare:
    statistic: float
    p_value: float
    df: int = 1


@dataclass(frozen=True, slots=True)
class CupedInfo:
    """``variance_reduction``: 1 - Var(adjusted difference) / Var(unadjusted difference)."""

    theta: float
    covariate_mean: float
    variance_reduction: float
    unadjusted_abs_lift: float
    unadjusted_abs_lift_ci: tuple[float, float] | None
    unadjusted_p_value: float | None
    unadjusted_test: str


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Always-valid ``p_value`` and the confidence sequence ``ci`` for the absolute lift at this look;
    ``tau``: standard deviation of the normal mixing distribution (metric units); ``planned_n``: the
    per-variant sample size τ was tuned to (None when τ was given)."""

    p_value: float
    ci: tuple[float, float]
    tau: float
    planned_n: float | None
    significant: bool
    method: str = "msprt_normal_mixture"


@dataclass(frozen=True, slots=True)
class BayesianResult:
    """``chance_to_win``: P(treatment better than control, in the metric's direction);
    ``expected_loss``: E[max(how much worse the treatment is, 0)] in metric units."""

    chance_to_win: float
    expected_loss: float
    method: str  # "beta_binomial" | "normal"


@dataclass(frozen=True, slots=True)
class Comparison:
    metric_type: str
    direction: str
    alpha: float
    test: str
    control: VariantSummary
    treatment: VariantSummary
    abs_lift: float
    abs_lift_ci: tuple[float, float] | None
    rel_lift: float | None
    rel_lift_ci: tuple[float, float] | None
    std_error: float | None
    statistic: float | None
    df: float | None
    p_value: float | None
    significant: bool
    better: bool
    worse: bool
    chi2: ChiSquare | None = None
    cuped: CupedInfo | None = None
    sequential: SequentialResult | None = None
    bayesian: BayesianResult | None = None
    adjusted_p_value: float | None = None
    significant_adjusted: bool | None = None
    correction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: tuples become lists, non-finite floats become None."""
        answer: dict[str, Any] = _jsonable(self)
        return answer


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _jsonable(value: Any) -> Any:
    names = _FIELD_NAMES.get(type(value))
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.setdefault(type(value), tuple(f.name for f in fields(value)))
    if names is not None:
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _two_sided_z(z: float) -> float:
    return float(2.0 * special.ndtr(-abs(z)))


def _welch(diff: float, var_t: float, n_t: float, var_c: float, n_c: float) -> tuple[float, float, float]:
    """(t, df, two-sided p) from the variances of the two means."""
    var = var_t + var_c
    if var <= 0:
        return (0.0 if diff == 0 else math.copysign(math.inf, diff)), math.inf, (1.0 if diff == 0 else 0.0)
    t = diff / math.sqrt(var)
    denom = var_t * var_t / (n_t - 1) + var_c * var_c / (n_c - 1)
    df = var * var / denom if denom > 0 else math.inf
    p = float(2.0 * special.stdtr(df, -abs(t))) if math.isfinite(df) else _two_sided_z(t)
    return t, df, p


def _critical(alpha: float, df: float | None) -> float:
    if df is None or not math.isfinite(df):
        return float(special.ndtri(1.0 - alpha / 2.0))
    return float(special.stdtrit(df, 1.0 - alpha / 2.0))


def _interval(center: float, se: float, crit: float) -> tuple[float, float]:
    return (center - crit * se, center + crit * se)


def _relative(
    mean_t: float, var_t: float, mean_c: float, var_c: float, crit: float
) -> tuple[float | None, tuple[float, float] | None]:
    if mean_c == 0:
        return None, None
    rel = mean_t / mean_c - 1.0
    var = var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4
    return rel, _interval(rel, math.sqrt(max(var, 0.0)), crit)


def compare(
    metric_type: str,
    control: MeanStats | RatioStats,
    treatment: MeanStats | RatioStats,
    *,
    alpha: float = 0.05,
    direction: str = "higher",
    sequential: bool = True,
    sequential_tau: float | None = None,
    sequential_n: float | None = None,
    cuped: bool = True,
    theta: float | None = None,
    covariate_mean: float | None = None,
    bayesian: bool = True,
) -> Comparison:
    """Compare ``treatment`` with ``control`` for one metric.

    ``metric_type``: binary | continuous (``MeanStats``) | ratio (``RatioStats``);
    ``direction``: higher | lower is better (decides ``better``/``worse`` and Bayesian "win");
    ``sequential_tau``: the mSPRT mixing standard deviation on the difference (metric units); when
    None it is tuned to ``sequential_n`` units per variant (default ``DEFAULT_PLANNED_N``);
    ``cuped``: adjust with the pre-period covariate when both variants have one; ``theta`` /
    ``covariate_mean``: CUPED slope and covariate mean pooled over all the experiment's variants
    (default: pooled over these two).
    """
    kind = metric_kind(metric_type)
    _check_arguments(direction, alpha, sequential_tau)
    est = _ratio_estimate(control, treatment) if kind == "ratio" else _mean_estimate(kind, control, treatment)
    enough = est.n_c >= 2 and est.n_t >= 2
    if enough:
        _fixed_horizon_test(est, kind, control, treatment, alpha)
        if (
            cuped
            and kind != "ratio"
            and isinstance(control, MeanStats)
            and isinstance(treatment, MeanStats)
            and has_covariates(control, treatment)
        ):
            _apply_cuped(est, control, treatment, alpha, theta, covariate_mean)
    seq_result = _sequential(est, alpha, sequential_tau, sequential_n) if sequential and enough else None
    bayes_result = _bayesian(est, kind, control, treatment, direction, enough) if bayesian else None
    return _comparison(est, kind, direction, alpha, seq_result, bayes_result)


def _check_arguments(direction: str, alpha: float, sequential_tau: float | None) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if sequential_tau is not None and not sequential_tau > 0:
        raise ValueError("sequential_tau must be positive")


@dataclass(slots=True)
class _Estimate:
    """A comparison as it is worked out: the moments, then the fixed-horizon test, which CUPED
    may replace by its adjusted one."""

    n_c: float
    n_t: float
    mean_c: float
    mean_t: float
    vm_c: float  # variances of the means
    vm_t: float
    summary_c: VariantSummary
    summary_t: VariantSummary
    test: str
    diff: float = 0.0
    var: float = 0.0
    statistic: float | None = None
    df: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    rel: float | None = None
    rel_ci: tuple[float, float] | None = None
    se: float | None = None
    chi2: ChiSquare | None = None
    cuped: CupedInfo | None = None

    def __post_init__(self) -> None:
        self.diff = self.mean_t - self.mean_c
        self.var = self.vm_t + self.vm_c


def _ratio_estimate(control: MeanStats | RatioStats, treatment: MeanStats | RatioStats) -> _Estimate:
    if not (isinstance(control, RatioStats) and isinstance(treatment, RatioStats)):
        raise TypeError("a ratio metric needs RatioStats")
    n_c, n_t = control.n, treatment.n
    mean_c, mean_t = control.ratio, treatment.ratio
    return _Estimate(
        n_c,
        n_t,
        mean_c,
        mean_t,
        control.variance_of_ratio,
        treatment.variance_of_ratio,
        VariantSummary(n_c, mean_c, control.std, control.sum_num, control.sum_den),
        VariantSummary(n_t, mean_t, treatment.std, treatment.sum_num, treatment.sum_den),
        "delta_method_z",
    )


def _mean_estimate(
    kind: str, control: MeanStats | RatioStats, treatment: MeanStats | RatioStats
) -> _Estimate:
    if not (isinstance(control, MeanStats) and isinstance(treatment, MeanStats)):
        raise TypeError(f"a {kind} metric needs MeanStats")
    n_c, n_t = control.n, treatment.n
    mean_c, mean_t = control.mean, treatment.mean
    if kind == "binary":
        for s in (control, treatment):
            if not 0 <= s.sum <= s.n:
                raise ValueError("binary successes must be within [0, n]")
        vu_c, vu_t = mean_c * (1 - mean_c), mean_t * (1 - mean_t)
    else:
        vu_c, vu_t = control.variance, treatment.variance
    return _Estimate(
        n_c,
        n_t,
        mean_c,
        mean_t,
        vu_c / n_c if n_c > 0 else 0.0,
        vu_t / n_t if n_t > 0 else 0.0,
        VariantSummary(n_c, mean_c, math.sqrt(vu_c), control.sum),
        VariantSummary(n_t, mean_t, math.sqrt(vu_t), treatment.sum),
        "two_proportion_z" if kind == "binary" else "welch_t",
    )


def _fixed_horizon_test(
    est: _Estimate,
    kind: str,
    control: MeanStats | RatioStats,
    treatment: MeanStats | RatioStats,
    alpha: float,
) -> None:
    """The test statistic, p-value and intervals, for two variants of at least 2 units each."""
    est.se = math.sqrt(est.var)
    if kind == "binary":
        assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
        _two_proportion_z(est, control, treatment)
    elif kind == "continuous":
        est.statistic, est.df, est.p_value = _welch(est.diff, est.vm_t, est.n_t, est.vm_c, est.n_c)
    elif est.var > 0:
        est.statistic = est.diff / est.se
        est.p_value = _two_sided_z(est.statistic)
    else:
        diff = est.diff
        est.statistic, est.p_value = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    crit = _critical(alpha, est.df)
    est.ci = _interval(est.diff, est.se, crit)
    est.rel, est.rel_ci = _relative(est.mean_t, est.vm_t, est.mean_c, est.vm_c, crit)


def _two_proportion_z(est: _Estimate, control: MeanStats, treatment: MeanStats) -> None:
    n_c, n_t = est.n_c, est.n_t
    pooled = (control.sum + treatment.sum) / (n_c + n_t)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    if se0 > 0:
        statistic = est.diff / se0
        p_value = _two_sided_z(statistic)
    else:
        statistic, p_value = 0.0, 1.0
    est.statistic, est.p_value = statistic, p_value
    est.chi2 = ChiSquare(statistic * statistic, p_value)


def _apply_cuped(
    est: _Estimate,
    control: MeanStats,
    treatment: MeanStats,
    alpha: float,
    theta: float | None,
    covariate_mean: float | None,
) -> None:
    """Replace the test by Welch's t on CUPED-adjusted values (the plain figures go to ``cuped``)."""
    th = theta if theta is not None else cuped_theta(control, treatment)
    if th is None:
        return
    xbar = covariate_mean
    if xbar is None:
        xbar = pooled_covariate_mean(control, treatment)
    adj_c = cuped_adjust(control, th, xbar)
    adj_t = cuped_adjust(treatment, th, xbar)
    raw_var = control.variance / est.n_c + treatment.variance / est.n_t  # like for like (ddof=1)
    a_vm_c, a_vm_t = adj_c.variance_of_mean, adj_t.variance_of_mean
    a_diff = adj_t.mean - adj_c.mean
    a_t, a_df, a_p = _welch(a_diff, a_vm_t, est.n_t, a_vm_c, est.n_c)
    est.cuped = CupedInfo(
        theta=th,
        covariate_mean=xbar,
        variance_reduction=(1.0 - (a_vm_c + a_vm_t) / raw_var) if raw_var > 0 else 0.0,
        unadjusted_abs_lift=est.diff,
        unadjusted_abs_lift_ci=est.ci,
        unadjusted_p_value=est.p_value,
        unadjusted_test=est.test,
    )
    est.test = "cuped_welch_t"
    est.diff, est.var, est.vm_c, est.vm_t = a_diff, a_vm_c + a_vm_t, a_vm_c, a_vm_t
    est.statistic, est.df, est.p_value = a_t, a_df, a_p
    est.se = math.sqrt(est.var)
    crit = _critical(alpha, est.df)
    est.ci = _interval(est.diff, est.se, crit)
    est.rel, est.rel_ci = _relative(adj_t.mean, est.vm_t, adj_c.mean, est.vm_c, crit)
    est.summary_c = replace(est.summary_c, adjusted_mean=adj_c.mean)
    est.summary_t = replace(est.summary_t, adjusted_mean=adj_t.mean)


def _sequential(
    est: _Estimate, alpha: float, sequential_tau: float | None, sequential_n: float | None
) -> SequentialResult:
    """mSPRT: the always-valid p-value and confidence sequence at this look."""
    diff, var = est.diff, est.var
    if sequential_tau is not None:
        tau2, planned = float(sequential_tau) ** 2, None
    else:
        planned = float(sequential_n) if sequential_n else float(seq.DEFAULT_PLANNED_N)
        tau2 = seq.mixing_variance(est.n_t * est.vm_t + est.n_c * est.vm_c, planned, alpha)
    if tau2 > 0:
        sp = seq.always_valid_p_value(diff, var, tau2)
        cs = seq.confidence_sequence(diff, var, tau2, alpha)
    else:  # no variance at all
        sp, cs = (1.0 if diff == 0 else 0.0), (diff, diff)
    return SequentialResult(sp, cs, math.sqrt(tau2), planned, sp < alpha)


def _bayesian(
    est: _Estimate,
    kind: str,
    control: MeanStats | RatioStats,
    treatment: MeanStats | RatioStats,
    direction: str,
    enough: bool,
) -> BayesianResult | None:
    if (
        kind == "binary"
        and est.cuped is None
        and est.n_c > 0
        and est.n_t > 0
        and isinstance(control, MeanStats)
        and isinstance(treatment, MeanStats)
    ):
        win, loss = bayes.beta_binomial(control.sum, est.n_c, treatment.sum, est.n_t, direction)
        return BayesianResult(win, loss, "beta_binomial")
    if enough:
        win, loss = bayes.normal(est.diff, est.var, direction)
        return BayesianResult(win, loss, "normal")
    return None


def _comparison(
    est: _Estimate,
    kind: str,
    direction: str,
    alpha: float,
    seq_result: SequentialResult | None,
    bayes_result: BayesianResult | None,
) -> Comparison:
    diff = est.diff
    significant = est.p_value is not None and est.p_value < alpha
    good = diff > 0 if direction == "higher" else diff < 0
    bad = diff < 0 if direction == "higher" else diff > 0
    return Comparison(
        metric_type=kind,
        direction=direction,
        alpha=alpha,
        test=est.test,
        control=est.summary_c,
        treatment=est.summary_t,
        abs_lift=diff,
        abs_lift_ci=est.ci,
        rel_lift=est.rel,
        rel_lift_ci=est.rel_ci,
        std_error=est.se,
        statistic=est.statistic,
        df=est.df,
        p_value=est.p_value,
        significant=significant,
        better=significant and good,
        worse=significant and bad,
        chi2=est.chi2,
        cuped=est.cuped,
        sequential=seq_result,
        bayesian=bayes_result,
    )


def apply_correction(comparisons: Sequence[Comparison], method: str = "holm") -> list[Comparison]:
    """The comparisons with ``adjusted_p_value``/``significant_adjusted`` set, the family being all
    of them (every variant x metric of the analysis)."""
    adjusted = adjust_pvalues([c.p_value for c in comparisons], method)
    name = "holm" if method.lower().startswith("holm") else "bh"
    return [
        replace(
            c,
            adjusted_p_value=a,
            significant_adjusted=None if a is None else a < c.alpha,
            correction=name,
        )
        for c, a in zip(comparisons, adjusted, strict=True)
    ]
