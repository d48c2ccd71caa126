"""Experiment statistics from sufficient statistics (pure functions, numpy/scipy, no I/O).

- ``MeanStats`` / ``RatioStats``: per-variant sums maintained incrementally;
- ``compare``: one variant vs the control for one metric (frequentist test, lift and intervals,
  CUPED, sequential mSPRT, Bayesian chance to win / expected loss) → ``Comparison``;
- ``adjust_pvalues`` / ``apply_correction``: Holm or Benjamini-Hochberg across variants x metrics;
- ``srm_check``: sample ratio mismatch;
- ``required_sample_size`` / ``minimum_detectable_effect`` / ``statistical_power``;
- ``mann_whitney``: on raw values, on request.
"""

from ab_testing.stats.bayesian import beta_binomial, beta_compare
from ab_testing.stats.compare import (
    DIRECTIONS,
    METRIC_TYPES,
    BayesianResult,
    ChiSquare,
    Comparison,
    CupedInfo,
    SequentialResult,
    VariantSummary,
    apply_correction,
    compare,
    metric_kind,
)
from ab_testing.stats.corrections import adjust_pvalues
from ab_testing.stats.cuped import AdjustedMean, cuped_adjust, cuped_theta, pooled_covariate_mean
from ab_testing.stats.nonparametric import MannWhitneyResult, mann_whitney
from ab_testing.stats.power import minimum_detectable_effect, required_sample_size, statistical_power
from ab_testing.stats.sequential import (
    DEFAULT_PLANNED_N,
    always_valid_p_value,
    confidence_sequence,
    mixing_variance,
)
from ab_testing.stats.srm import SRM_THRESHOLD, SRMResult, srm_check
from ab_testing.stats.sufficient import MeanStats, RatioStats

__all__ = [
    "DEFAULT_PLANNED_N",
    "DIRECTIONS",
    "METRIC_TYPES",
    "SRM_THRESHOLD",
    "AdjustedMean",
    "BayesianResult",
    "ChiSquare",
    "Comparison",
    "CupedInfo",
    "MannWhitneyResult",
    "MeanStats",
    "RatioStats",
    "SRMResult",
    "SequentialResult",
    "VariantSummary",
    "adjust_pvalues",
    "always_valid_p_value",
    "apply_correction",
    "beta_binomial",
    "beta_compare",
    "compare",
    "confidence_sequence",
    "cuped_adjust",
    "cuped_theta",
    "mann_whitney",
    "metric_kind",
    "minimum_detectable_effect",
    "mixing_variance",
    "pooled_covariate_mean",
    "required_sample_size",
    "srm_check",
    "statistical_power",
]
