"""The report's framework-free parts: round time buckets, the plotted metric, distributions over
the pinned bins, and a page that escapes every name (the model's included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from model_registry.monitoring import drift as st
from model_registry.monitoring.distributions import REST, distribution
from model_registry.monitoring.html_report import ReportInput, render
from model_registry.monitoring.performance import compare_with_registered, compute_performance
from model_registry.monitoring.profile import build_profile
from model_registry.monitoring.report import drift
from model_registry.monitoring.svg import Point, Series, bar_chart, line_chart
from model_registry.monitoring.timeline import main_metric, performance_over_time

START = datetime(2026, 3, 1, 9, 7, 13, tzinfo=UTC)


def test_buckets_are_round_cover_every_row_and_equal_the_core_per_bucket() -> None:
    rng = np.random.default_rng(0)
    stamps = sorted(START + timedelta(seconds=float(s)) for s in rng.uniform(0, 5 * 3600, 600))
    preds, labels = list(rng.integers(0, 2, 600)), list(rng.integers(0, 2, 600))
    overall = compute_performance(preds, labels)
    buckets = performance_over_time(stamps, preds, labels, None, overall, "accuracy")
    assert {b.end - b.start for b in buckets} == {timedelta(minutes=30)}  # 5 h / 12 -> 30 min
    assert buckets[0].start == datetime(2026, 3, 1, 9, 0, tzinfo=UTC) and buckets[-1].end > stamps[-1]
    assert sum(b.n for b in buckets) == 600
    inside = [i for i, t in enumerate(stamps) if buckets[2].start <= t < buckets[2].end]
    alone = compute_performance([preds[i] for i in inside], [labels[i] for i in inside])
    assert (buckets[2].n, buckets[2].value) == (len(inside), alone.metrics["accuracy"].value)
    assert performance_over_time([], [], [], None, overall, "accuracy") == []


def test_the_plotted_metric_is_the_first_with_a_registered_value() -> None:
    report = compute_performance([0, 1, 1, 0], [0, 1, 0, 0], [0.2, 0.9, 0.6, 0.1])
    assert main_metric(report, {"auc": 0.7}) == "roc_auc"
    assert main_metric(report, {"F1_score": 0.7, "auc": 0.7}) == "f1"
    assert main_metric(report, {}) == "accuracy"
    regression = compute_performance([1.5, 2.5, 3.0], [1.0, 2.0, 3.5])
    assert main_metric(regression, {"r2_score": 0.9}) == "r2" and main_metric(regression, {}) == "mae"


def test_numeric_distributions_use_the_pinned_bins_and_categories_fold_the_rest() -> None:
    rng = np.random.default_rng(1)
    many = [f"c{i}" for i in range(20)]
    profile = build_profile({"x": rng.normal(0, 1, 5000), "c": rng.choice(many, 5000)})
    current = rng.normal(0.5, 1, 800)
    numeric = distribution(profile.columns["x"], current)
    col = profile.columns["x"]
    assert len(numeric.groups) == len(col.bin_edges) + 1 and numeric.edges is not None
    expected = st.bin_counts(current, col.bin_edges) / 800
    assert np.allclose(numeric.current, expected) and np.isclose(sum(numeric.reference), 1.0)
    categorical = distribution(profile.columns["c"], rng.choice(many, 300).tolist() + [None] * 10)
    assert categorical.groups[-1] == REST and len(categorical.groups) == 9
    assert np.isclose(sum(categorical.current), 1.0) and categorical.current_count == 300


def test_charts_escape_their_labels() -> None:
    evil = "<script>x</script>"
    bars = bar_chart([evil, "b"], [Series(evil, [0.5, 0.5], "#000")], label=evil)
    line = line_chart([Point(0, 0.5, 0.4, 0.6, evil)], label=evil, x_labels=[(0, evil)], reference=0.5)
    for svg in (bars, line):
        assert "<script" not in svg and "&lt;script&gt;" in svg


def test_the_page_escapes_the_model_name_and_version() -> None:
    evil = "<script>alert(1)</script>"
    rng = np.random.default_rng(2)
    profile = build_profile({"x": rng.normal(0, 1, 500)})
    columns = {"x": list(rng.normal(0, 1, 100))}
    performance = compute_performance([evil, "a"], [evil, "a"])
    page = render(
        ReportInput(
            name=evil,
            version=evil,
            window={"start": None, "end": None, "last_n": None, "count": 100, "truncated": False},
            profile=profile,
            columns=columns,
            timestamps=[START] * 100,
            drift=drift(profile, columns),
            performance=performance,
            registered=compare_with_registered(performance, {}),
            metric="accuracy",
            timeline=performance_over_time(
                [START] * 2, [evil, "a"], [evil, "a"], None, performance, "accuracy"
            ),
            generated_at=START,
        )
    )
    assert "<script" not in page and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
