"""Reference profiles (chunked builds, JSON, missing values) and drift verdicts (false alarms, power)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_registry.monitoring.columns import ColumnTypeError
from model_registry.monitoring.profile import (
    OTHER,
    Profile,
    ProfileBuilder,
    build_profile,
    build_profile_chunks,
)
from model_registry.monitoring.report import INSUFFICIENT, DriftConfig, DriftConfigError, FeatureConfig, drift
from scipy import stats

CATS = np.array(list("abcdefghij"))


def _feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in report["features"] if f["feature"] == name)


def _columns(rng: np.random.Generator, n: int) -> dict[str, Any]:
    x = rng.normal(5, 2, size=n)
    x[rng.random(n) < 0.05] = np.nan
    return {
        "x": x,
        "k": rng.integers(0, 4, size=n),
        "c": rng.choice(CATS, size=n),
        "b": rng.random(n) < 0.3,
    }


def test_profile_contents_and_sampling() -> None:
    cols = _columns(np.random.default_rng(1), 25_000)
    p = build_profile(cols, sample_size=10_000)
    x = cols["x"][~np.isnan(cols["x"])]
    px = p.columns["x"]
    assert px.kind == "numeric" and px.count == x.size and px.missing == 25_000 - x.size
    assert px.mean == pytest.approx(x.mean(), rel=1e-12) and px.std == pytest.approx(x.std(), rel=1e-12)
    assert (px.min, px.max) == (x.min(), x.max())
    assert px.sampled is True and len(px.sample) == 10_000 and set(px.sample) <= set(x.tolist())
    assert sum(px.bin_counts) == 10_000 and len(px.bin_counts) == len(px.bin_edges) + 1 == 10
    assert p.columns["k"].value_counts is not None and len(p.columns["k"].value_counts) == 4
    assert p.columns["b"].kind == "boolean" and set(p.columns["b"].frequencies) == {"false", "true"}
    assert sum(p.columns["c"].frequencies.values()) == 25_000


def test_small_reference_is_kept_whole() -> None:
    x = np.random.default_rng(2).normal(size=500)
    px = build_profile({"x": x}).columns["x"]
    assert px.sampled is False and sorted(px.sample) == sorted(x.tolist())
    assert px.quantiles["0.5"] == np.quantile(x, 0.5)


def test_chunked_build_equals_one_shot() -> None:
    cols = _columns(np.random.default_rng(3), 25_000)
    whole = build_profile(cols, sample_size=5_000, seed=7)
    chunks = ({k: v[i : i + 3_001] for k, v in cols.items()} for i in range(0, 25_000, 3_001))
    parts = build_profile_chunks(chunks, sample_size=5_000, seed=7)
    for name, a in whole.columns.items():
        b = parts.columns[name]
        for attr in ("count", "missing", "frequencies", "value_counts", "sample", "bin_edges", "bin_counts"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
        assert a.quantiles == b.quantiles
        if a.kind == "numeric":
            assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.std == pytest.approx(b.std, rel=1e-12)


def test_builders_over_row_ranges_merge_into_the_one_shot_profile() -> None:
    cols = _columns(np.random.default_rng(13), 25_000)
    whole = build_profile(cols, sample_size=5_000, seed=3)
    first = ProfileBuilder(sample_size=5_000, seed=3)
    first.update({k: v[:12_000] for k, v in cols.items()})
    second = ProfileBuilder(sample_size=5_000, seed=3, row_offset=12_000)
    second.update({k: v[12_000:] for k, v in cols.items()})
    first.merge(second)
    merged = first.finalize()
    for name, a in whole.columns.items():
        b = merged.columns[name]
        for attr in ("count", "missing", "frequencies", "value_counts", "sample", "bin_counts"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
        if a.kind == "numeric":
            assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.std == pytest.approx(b.std, rel=1e-12)


def test_profile_round_trips_through_json() -> None:
    cols = _columns(np.random.default_rng(4), 3_000)
    p = build_profile(cols, sample_size=1_000)
    again = Profile.from_json(p.to_json())
    assert again == p
    cur = _columns(np.random.default_rng(5), 2_000)
    assert drift(again, cur) == drift(p, cur)
    with pytest.raises(ValueError, match="format"):
        Profile.from_dict({**p.to_dict(), "format": 99})


def test_constant_reference_column() -> None:
    p = build_profile({"x": np.full(5_000, 3.0)})
    same, moved = drift(p, {"x": np.full(500, 3.0)}), drift(p, {"x": np.full(500, 4.0)})
    assert _feature(same, "x")["drifted"] is False and _feature(moved, "x")["drifted"] is True
    config = DriftConfig(features={"x": FeatureConfig(method="wasserstein")})
    forced = drift(p, {"x": np.full(500, 3.01)}, config)
    assert _feature(forced, "x")["statistic"] == pytest.approx(0.01 / 0.001)


def test_categories_are_bounded_with_the_rest_as_other() -> None:
    rng = np.random.default_rng(6)
    values = [f"v{i}" for i in rng.zipf(1.5, size=20_000) % 500]
    p = build_profile({"c": values}, max_categories=20)
    col = p.columns["c"]
    assert col.categories_truncated and len(col.frequencies) == 21 and OTHER in col.frequencies
    assert sum(col.frequencies.values()) == 20_000
    report = drift(p, {"c": [f"v{i}" for i in rng.zipf(1.5, size=5_000) % 500]})
    assert _feature(report, "c")["status"] == "ok"


def test_wrong_type_names_column_and_row() -> None:
    with pytest.raises(ColumnTypeError) as err:
        build_profile({"x": [1.0, 2.0, "three"]}, kinds={"x": "numeric"})
    assert (err.value.column, err.value.row) == ("x", 2)
    with pytest.raises(ColumnTypeError) as err:
        build_profile({"b": [True, False, True, "maybe", "maybe"]}, kinds={"b": "boolean"})
    assert (err.value.column, err.value.row) == ("b", 3)


def test_nan_and_none_count_as_missing() -> None:
    rng = np.random.default_rng(8)
    p = build_profile({"x": rng.normal(size=2_000), "c": rng.choice(CATS, size=2_000)})
    x = rng.normal(size=1_000)
    x[:250] = np.nan
    c: list[Any] = rng.choice(CATS, size=1_000).tolist()
    c[:100] = [None] * 50 + [float("nan")] * 50
    report = drift(p, {"x": x, "c": c})
    fx, fc = _feature(report, "x"), _feature(report, "c")
    assert fx["missing_share"] == 0.25 and fx["current_count"] == 750 and fx["drifted"] is False
    assert fc["missing_share"] == 0.1 and fc["current_count"] == 900


@pytest.mark.parametrize("size", [0, 1, 29])
def test_tiny_or_empty_window_is_insufficient_data_never_drift(size: int) -> None:
    rng = np.random.default_rng(9)
    p = build_profile({"x": rng.normal(size=2_000), "c": rng.choice(CATS, size=2_000)})
    report = drift(p, {"x": np.full(size, 100.0), "c": ["zzz"] * size})
    for f in report["features"]:
        assert f["status"] == INSUFFICIENT and f["drifted"] is False and f["statistic"] is None
    assert report["dataset"] == {**report["dataset"], "status": INSUFFICIENT, "drifted": False}


def test_all_missing_window_is_insufficient_data() -> None:
    p = build_profile({"x": np.random.default_rng(10).normal(size=500)})
    f = _feature(drift(p, {"x": np.full(100, np.nan)}), "x")
    assert f["status"] == INSUFFICIENT and f["missing_share"] == 1.0


def test_unknown_and_missing_columns_are_reported() -> None:
    p = build_profile({"x": np.arange(100.0), "y": np.arange(100.0)})
    report = drift(p, {"x": np.arange(100.0), "z": [1] * 100})
    assert report["unknown_columns"] == ["z"] and report["missing_columns"] == ["y"]


def test_false_alarms_stay_at_the_nominal_level() -> None:
    """Unchanged data: each p-value test rejects near 5 %, the Holm verdict at most 5 % (99.9 % bounds)."""
    rng = np.random.default_rng(11)
    windows, n_ref, n_cur = 300, 1_000, 500
    probs = np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum()
    rejections = {"x1": 0, "x2": 0, "c1": 0, "c2": 0}
    dataset = 0
    for _ in range(windows):
        ref = {"x1": rng.normal(size=n_ref), "x2": rng.exponential(size=n_ref)}
        ref |= {"c1": rng.choice(CATS, size=n_ref, p=probs), "c2": rng.choice(CATS[:4], size=n_ref)}
        cur = {"x1": rng.normal(size=n_cur), "x2": rng.exponential(size=n_cur)}
        cur |= {"c1": rng.choice(CATS, size=n_cur, p=probs), "c2": rng.choice(CATS[:4], size=n_cur)}
        report = drift(build_profile(ref), cur)
        for f in report["features"]:
            assert f["method"] == ("ks" if f["feature"].startswith("x") else "chisquare")
            rejections[f["feature"]] += f["drifted"]
        dataset += report["dataset"]["drifted"]
    low, high = stats.binom.ppf(0.001, windows, 0.05), stats.binom.ppf(0.999, windows, 0.05)
    for name, count in rejections.items():
        assert low <= count <= high, (name, count)
    assert dataset <= high


def _shifted(rng: np.random.Generator, n: int, shift: float, move: float) -> dict[str, Any]:
    probs = np.full(10, 0.1)
    probs[0] += move
    probs[-3:] -= move / 3
    return {"x": rng.normal(shift, 1, size=n), "c": rng.choice(CATS, size=n, p=probs)}


@pytest.mark.parametrize(("n_ref", "move"), [(1_000, 0.1), (20_000, 0.15)])
def test_half_std_shift_and_moderate_category_change_are_caught(n_ref: int, move: float) -> None:
    rng = np.random.default_rng(12)
    p = build_profile(_shifted(rng, n_ref, 0.0, 0.0))
    report = drift(p, _shifted(rng, 10_000, 0.5, move))
    assert all(f["drifted"] for f in report["features"]), report["features"]
    assert report["dataset"]["drifted"] is True
    unchanged = drift(p, _shifted(rng, 10_000, 0.0, 0.0))
    assert unchanged["dataset"]["drifted"] is False


def test_bad_config_names_every_problem() -> None:
    p = build_profile({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    config = DriftConfig(
        alpha=1.5,
        features={
            "nope": FeatureConfig(),
            "x": FeatureConfig(method="magic", threshold=-1),
            "c": FeatureConfig(method="ks"),
        },
    )
    with pytest.raises(DriftConfigError) as err:
        drift(p, {"x": np.arange(100.0), "c": ["a"] * 100}, config)
    text = " ".join(err.value.problems)
    for needle in ("'nope' is not in", "unknown method 'magic'", "positive", "ks needs a numeric", "alpha"):
        assert needle in text
