"""Mergeable feature statistics against numpy on random data: merged batches equal the whole."""

from __future__ import annotations

import random

import numpy as np
import pytest
from feature_store import stats


def split(values: list, rng: random.Random, parts: int) -> list[list]:
    cuts = sorted(rng.sample(range(1, len(values)), parts - 1))
    return [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]


def merged(values: list, type_: str, rng: random.Random, parts: int = 7) -> dict:
    state = stats.empty_state(type_)
    for part in split(values, rng, parts):
        state = stats.merge(state, stats.batch_state(part, type_), type_)
    return state


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merged_moments_equal_numpy_on_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.gauss(50, 12) if rng.random() > 0.1 else None for _ in range(5000)]
    values += [float("nan"), float("inf")]
    summary = stats.summarize(merged(values, "float", rng), "float")
    finite = np.array([v for v in values if v is not None and np.isfinite(v)])
    assert summary["count"] == finite.size
    assert summary["nulls"] == len(values) - finite.size
    assert summary["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert summary["std"] == pytest.approx(finite.std(ddof=1), rel=1e-9)
    assert (summary["min"], summary["max"]) == (finite.min(), finite.max())
    assert sum(summary["histogram"]["counts"]) == pytest.approx(finite.size, abs=10)
    # beyond the sample size quantiles are estimates: within a few percent of rank
    for name, q in stats.QUANTILES.items():
        rank = (finite < summary["quantiles"][name]).mean()
        assert abs(rank - q) < 0.05, name
    assert summary["quantiles_exact"] is False


def test_small_features_have_exact_quantiles_and_histogram() -> None:
    rng = random.Random(5)
    values = [rng.randint(-100, 100) for _ in range(stats.SAMPLE_SIZE)]
    summary = stats.summarize(merged(values, "int", rng), "int")
    assert summary["quantiles_exact"] is True
    for name, q in stats.QUANTILES.items():
        assert summary["quantiles"][name] == pytest.approx(np.quantile(values, q))
    counts, edges = np.histogram(values, bins=stats.BINS)
    assert summary["histogram"]["counts"] == counts.tolist()
    assert summary["histogram"]["edges"] == pytest.approx(edges.tolist())


def test_merge_is_the_same_whatever_the_batches() -> None:
    rng = random.Random(9)
    values = [rng.random() for _ in range(800)]
    one = stats.summarize(stats.batch_state(values, "float"), "float")
    many = stats.summarize(merged(values, "float", rng, parts=13), "float")
    assert many["mean"] == pytest.approx(one["mean"], rel=1e-12)
    assert many["std"] == pytest.approx(one["std"], rel=1e-9)
    assert many["quantiles"] == pytest.approx(one["quantiles"])


def test_categories_are_counted_and_capped() -> None:
    rng = random.Random(3)
    values = [rng.choice("aaabbc") for _ in range(3000)] + [None] * 7 + [f"rare{i}" for i in range(2000)]
    rng.shuffle(values)
    summary = stats.summarize(merged(values, "string", rng), "string")
    assert summary["nulls"] == 7 and summary["count"] == 5000
    top = {t["value"]: t["count"] for t in summary["top"][:3]}
    assert top == {c: values.count(c) for c in "abc"}
    assert summary["distinct"] <= stats.MAX_CATEGORIES and summary["distinct_is_lower_bound"] is True


def test_bools_lists_and_timestamps() -> None:
    b = stats.summarize(stats.batch_state([True, False, True, None], "bool"), "bool")
    assert b["top"] == [{"value": "true", "count": 2}, {"value": "false", "count": 1}]
    lists = stats.summarize(stats.batch_state([[1, 2], [], None], "list[int]"), "list[int]")
    assert lists == {"type": "list[int]", "count": 2, "nulls": 1, "mean_length": 1.0}
    ts = stats.summarize(stats.batch_state([0, 2_000_000], "timestamp"), "timestamp")
    assert (ts["min"], ts["max"], ts["mean"]) == (
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:02Z",
        "1970-01-01T00:00:01Z",
    )
    assert ts["std_seconds"] == pytest.approx(np.std([0, 2], ddof=1))


def test_an_empty_state_summarizes_to_counts_only() -> None:
    assert stats.summarize(stats.empty_state("float"), "float") == {"type": "float", "count": 0, "nulls": 0}
