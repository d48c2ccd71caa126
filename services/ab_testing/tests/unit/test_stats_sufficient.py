"""Sufficient statistics maintained incrementally equal those computed on the whole data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ab_testing.stats import MeanStats, RatioStats


def close(a: MeanStats | RatioStats, b: MeanStats | RatioStats) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key in da:
        assert da[key] == pytest.approx(db[key], rel=1e-9, abs=1e-6), key


def test_mean_stats_from_values_match_numpy() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 1000)
    s = MeanStats.from_values(y)
    assert s.n == 1000
    assert s.mean == pytest.approx(y.mean())
    assert s.variance == pytest.approx(y.var(ddof=1))
    assert s.std == pytest.approx(y.std(ddof=1))
    assert not s.has_covariate


def test_incremental_add_remove_update_merge_equal_batch() -> None:
    rng = np.random.default_rng(1)
    y = rng.exponential(5, 600)
    x = np.where(rng.random(600) < 0.7, rng.normal(3, 1, 600), np.nan)
    cov = [None if np.isnan(v) else float(v) for v in x]
    whole = MeanStats.from_values(y, cov)
    assert whole.n_cov == int((~np.isnan(x)).sum())

    # one unit at a time
    s = MeanStats()
    for v, c in zip(y, cov, strict=True):
        s = s.add(v, c)
    close(s, whole)

    # shards merged
    a = MeanStats.from_values(y[:250], cov[:250])
    b = MeanStats.from_values(y[250:], cov[250:])
    close(a.merge(b), whole)
    close(a + b, whole)

    # a unit's value changes: subtract old, add new
    y2 = y.copy()
    y2[7] = 42.0
    y2[8] = 0.0
    s2 = whole.update(y[7], 42.0, cov[7]).update(y[8], 0.0, cov[8])
    close(s2, MeanStats.from_values(y2, cov))

    # a unit leaves
    close(whole.remove(y[0], cov[0]), MeanStats.from_values(y[1:], cov[1:]))


def test_covariate_arriving_after_the_value() -> None:
    y = [1.0, 2.0, 5.0]
    s = MeanStats.from_values(y)
    s = s.add_covariate(4.0, value=2.0)
    close(s, MeanStats.from_values(y, [None, 4.0, None]))


def test_binary_values() -> None:
    s = MeanStats.from_values([0, 1, 1, 0, 1])
    assert (s.n, s.sum, s.sum_sq, s.mean) == (5, 3, 3, 0.6)


def test_ratio_stats_incremental_and_delta_variance() -> None:
    rng = np.random.default_rng(2)
    den = rng.poisson(8, 800) + 1.0
    num = rng.binomial(den.astype(int), 0.15).astype(float)
    whole = RatioStats.from_values(num, den)
    s = RatioStats()
    for a, b in zip(num, den, strict=True):
        s = s.add(a, b)
    close(s, whole)
    close(RatioStats.from_values(num[:300], den[:300]) + RatioStats.from_values(num[300:], den[300:]), whole)
    num2 = num.copy()
    num2[3], den2 = 9.0, den.copy()
    den2[3] = 12.0
    close(whole.update(num[3], den[3], 9.0, 12.0), RatioStats.from_values(num2, den2))
    close(whole.remove(num[0], den[0]), RatioStats.from_values(num[1:], den[1:]))

    # delta-method variance of the ratio == variance of the linearized (influence) values / n
    r = num.sum() / den.sum()
    lin = (num - r * den) / den.mean()
    assert whole.ratio == pytest.approx(r)
    assert whole.variance_of_ratio == pytest.approx(lin.var(ddof=1) / len(num), rel=1e-9)
    assert whole.std == pytest.approx(lin.std(ddof=1), rel=1e-9)


def test_serialization_round_trip() -> None:
    m = MeanStats(10, 4.0, 4.0, 3, 1.5, 2.0, 0.5)
    r = RatioStats(3, 1.0, 2.0, 1.0, 2.0, 1.0)
    assert MeanStats.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert RatioStats.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert MeanStats.from_dict({"n": 2, "sum": 1, "sum_sq": 1}) == MeanStats(2, 1, 1)


def test_empty_and_tiny_stats_do_not_divide_by_zero() -> None:
    assert MeanStats().mean == 0.0 and MeanStats().variance == 0.0
    assert MeanStats.from_values([3.0]).variance == 0.0
    assert RatioStats().ratio == 0.0 and RatioStats().variance_of_ratio == 0.0
