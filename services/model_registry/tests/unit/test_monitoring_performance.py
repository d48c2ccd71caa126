"""Performance-from-labels core: every metric equals scikit-learn's, intervals cover, degenerate
inputs give a reason instead of raising."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from model_registry.monitoring import performance_intervals as ci
from model_registry.monitoring.performance import (
    PerformanceInputError,
    compare_with_registered,
    compute_performance,
    infer_task,
)
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

TOL = 1e-9


def _value(report, name: str) -> float:
    value = report.metrics[name].value
    assert value is not None, report.metrics[name].reason
    return value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    proba = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    proba[:20] = np.round(proba[:20], 1)  # ties in the scores
    pred = (proba > 0.5).astype(int)
    report = compute_performance(pred, y, proba)
    assert report.task == "classification" and report.n_labelled == n
    assert report.positive_label == 1
    assert _value(report, "accuracy") == pytest.approx(accuracy_score(y, pred), abs=TOL)
    assert _value(report, "precision") == pytest.approx(precision_score(y, pred), abs=TOL)
    assert _value(report, "recall") == pytest.approx(recall_score(y, pred), abs=TOL)
    assert _value(report, "f1") == pytest.approx(f1_score(y, pred), abs=TOL)
    assert _value(report, "roc_auc") == pytest.approx(roc_auc_score(y, proba), abs=TOL)
    assert _value(report, "log_loss") == pytest.approx(log_loss(y, proba), abs=TOL)
    # two probability columns give the same answers
    two = compute_performance(pred, y, np.column_stack([1 - proba, proba]))
    assert _value(two, "roc_auc") == pytest.approx(roc_auc_score(y, proba), abs=TOL)
    assert _value(two, "log_loss") == pytest.approx(log_loss(y, proba), abs=TOL)
    for name in ("accuracy", "precision", "recall"):
        assert report.metrics[name].interval.method == "wilson"
    assert report.metrics["roc_auc"].interval.method == "delong"
    assert report.metrics["f1"].interval.method == "bootstrap_percentile"


def test_binary_string_labels_with_positive_label_equal_sklearn() -> None:
    rng = np.random.default_rng(5)
    y = rng.choice(["ham", "spam"], 300)
    pred = np.where(rng.random(300) < 0.8, y, rng.choice(["ham", "spam"], 300))
    p_ham = rng.random(300)
    report = compute_performance(pred.tolist(), y.tolist(), p_ham, positive_label="ham")
    assert report.classes == ["ham", "spam"] and report.positive_label == "ham"
    assert _value(report, "precision") == pytest.approx(precision_score(y, pred, pos_label="ham"), abs=TOL)
    assert _value(report, "recall") == pytest.approx(recall_score(y, pred, pos_label="ham"), abs=TOL)
    assert _value(report, "f1") == pytest.approx(f1_score(y, pred, pos_label="ham"), abs=TOL)
    assert _value(report, "roc_auc") == pytest.approx(roc_auc_score(y == "ham", p_ham), abs=TOL)
    expected_ll = log_loss(y, np.column_stack([p_ham, 1 - p_ham]), labels=["ham", "spam"])
    assert _value(report, "log_loss") == pytest.approx(expected_ll, abs=TOL)


def test_declared_string_classes_longer_than_the_observed_are_kept_whole() -> None:
    """A slice of the data (one time bucket) holding only the short class names: the declared
    ones must not be cut to the observed names' width (the positive label would go missing)."""
    report = compute_performance(
        ["a", "a"], ["a", "a"], classes=["a", "long_class"], positive_label="long_class"
    )
    assert report.classes == ["a", "long_class"] and report.positive_label == "long_class"
    assert _value(report, "accuracy") == 1.0 and report.metrics["recall"].value is None


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 600, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = np.where(rng.random(n) < 0.7, proba.argmax(axis=1), rng.integers(0, k, n))
    report = compute_performance(pred, y, proba)
    assert report.classes == [0, 1, 2, 3] and report.positive_label is None
    assert _value(report, "accuracy") == pytest.approx(accuracy_score(y, pred), abs=TOL)
    for avg in ("macro", "weighted"):
        assert _value(report, f"precision_{avg}") == pytest.approx(
            precision_score(y, pred, average=avg), abs=TOL
        )
        assert _value(report, f"recall_{avg}") == pytest.approx(recall_score(y, pred, average=avg), abs=TOL)
        assert _value(report, f"f1_{avg}") == pytest.approx(f1_score(y, pred, average=avg), abs=TOL)
    auc = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert _value(report, "roc_auc") == pytest.approx(auc, abs=TOL)
    assert _value(report, "log_loss") == pytest.approx(log_loss(y, proba), abs=TOL)
    assert report.metrics["roc_auc"].interval.method == "bootstrap_percentile"


def test_multiclass_class_never_predicted_matches_sklearn_zero_division() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    pred = np.array([0, 1, 1, 1, 1, 0, 0, 1])  # class 2 is never predicted
    report = compute_performance(pred, y)
    for avg in ("macro", "weighted"):
        expected = precision_score(y, pred, average=avg, zero_division=0)
        assert _value(report, f"precision_{avg}") == pytest.approx(expected, abs=TOL)
        assert _value(report, f"f1_{avg}") == pytest.approx(f1_score(y, pred, average=avg), abs=TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 500)
    pred = y + rng.normal(0, 1, 500)
    report = compute_performance(pred, y)
    assert report.task == "regression"
    assert _value(report, "mae") == pytest.approx(mean_absolute_error(y, pred), abs=TOL)
    assert _value(report, "rmse") == pytest.approx(math.sqrt(mean_squared_error(y, pred)), abs=TOL)
    assert _value(report, "r2") == pytest.approx(r2_score(y, pred), abs=TOL)
    assert _value(report, "mape") == pytest.approx(mean_absolute_percentage_error(y, pred), abs=TOL)
    for metric in report.metrics.values():
        assert metric.n == 500 and metric.interval.method == "bootstrap_percentile"
        assert metric.interval.low <= metric.value <= metric.interval.high


def test_missing_labels_and_predictions_are_excluded_and_counted() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(object)
    pred = rng.integers(0, 2, 200).astype(object)
    y[:10] = None
    y[10:15] = float("nan")
    pred[20:23] = None
    report = compute_performance(pred, y)
    keep = np.ones(200, dtype=bool)
    keep[:15] = False
    keep[20:23] = False
    assert (report.n_rows, report.n_missing_label, report.n_missing_prediction) == (200, 15, 3)
    assert report.n_labelled == 182 and report.metrics["accuracy"].n == 182
    expected = accuracy_score(y[keep].astype(int), pred[keep].astype(int))
    assert _value(report, "accuracy") == pytest.approx(expected, abs=TOL)
    # labels from a float column holding NaN (1.0, 0.0) still match integer predictions
    floats = np.array([1.0, 0.0, np.nan, 1.0])
    report = compute_performance([1, 0, 1, 0], floats)
    assert report.task == "classification" and _value(report, "accuracy") == pytest.approx(2 / 3)


def test_task_inference() -> None:
    obj = lambda xs: np.asarray(xs, dtype=object)  # noqa: E731
    assert infer_task(obj([0.5, 1.2]), obj([0.4, 1.0])) == "regression"
    assert infer_task(obj([0, 1, 2]), obj([1, 1, 0])) == "classification"
    assert infer_task(obj(["a", "b"]), obj(["b", "b"])) == "classification"
    assert infer_task(obj([True, False]), obj([False, False])) == "classification"
    assert infer_task(obj(list(range(100))), obj(list(range(100)))) == "regression"
    report = compute_performance([1, 2, 3], [1, 2, 4], task="regression")
    assert report.task == "regression" and _value(report, "mae") == pytest.approx(1 / 3)


def test_degenerate_inputs_give_reasons_not_errors() -> None:
    empty = compute_performance([], [])
    assert empty.n_labelled == 0 and "insufficient data" in (empty.reason or "")
    assert all(m.value is None and m.reason for m in empty.metrics.values())
    unlabelled = compute_performance([1.5, 2.5], [None, float("nan")], task="regression")
    assert unlabelled.n_missing_label == 2 and "insufficient data" in (unlabelled.reason or "")
    one_class = compute_performance([1, 0, 1], [1, 1, 1], [0.9, 0.2, 0.8])
    assert one_class.metrics["roc_auc"].value is None
    assert "one class" in (one_class.metrics["roc_auc"].reason or "")
    assert _value(one_class, "log_loss") == pytest.approx(log_loss([1, 1, 1], [0.9, 0.2, 0.8], labels=[0, 1]))
    no_positive_pred = compute_performance([0, 0, 0], [0, 1, 0])
    assert no_positive_pred.metrics["precision"].value is None
    assert "no positive predictions" in (no_positive_pred.metrics["precision"].reason or "")
    assert _value(no_positive_pred, "recall") == 0.0
    all_negative = compute_performance([0, 0], [0, 0])
    assert all_negative.metrics["recall"].value is None and all_negative.metrics["f1"].value is None
    assert _value(all_negative, "accuracy") == 1.0
    constant = compute_performance([1.5, 2.5, 3.5], [2.0, 2.0, 2.0])
    assert constant.metrics["r2"].value is None and "constant" in (constant.metrics["r2"].reason or "")
    zeros = compute_performance([1.5, 2.5], [0.0, 2.0])
    assert zeros.metrics["mape"].value is None and "zero" in (zeros.metrics["mape"].reason or "")
    bad_sum = compute_performance([0, 1, 2], [0, 1, 2], [[0.5, 0.5, 0.5]] * 3)
    assert "sum to one" in (bad_sum.metrics["log_loss"].reason or "")
    no_proba = compute_performance([0, 1, 1], [0, 1, 0], [0.2, None, 0.6])
    assert "no probability" in (no_proba.metrics["roc_auc"].reason or "")
    assert compute_performance([0, 1], [0, 1]).metrics["roc_auc"].reason == "no probabilities given"
    single = compute_performance(["x", "x"], ["x", "x"])
    assert _value(single, "accuracy") == 1.0 and single.metrics["precision"].value is None


def test_malformed_input_raises_the_input_error() -> None:
    with pytest.raises(PerformanceInputError):
        compute_performance([0, 1], [0, 1, 1])
    with pytest.raises(PerformanceInputError):
        compute_performance([0, 1], [0, 1], [[0.5, 0.5]])
    with pytest.raises(PerformanceInputError):
        compute_performance([0, 1], [0, 1], ["high", "low"])
    with pytest.raises(PerformanceInputError):
        compute_performance([0, 3], [0, 1], classes=[0, 1])


def test_report_is_json_ready_and_deterministic() -> None:
    rng = np.random.default_rng(9)
    y, pred = rng.normal(size=100), rng.normal(size=100)
    first = compute_performance(np.float32(pred), y).to_dict()
    assert first == compute_performance(np.float32(pred), y).to_dict()
    assert first["metrics"]["mae"]["interval"]["resamples"] == 1000
    assert isinstance(first["metrics"]["mae"]["value"], float)
    labels = compute_performance(np.array([True, False]), np.array([True, True])).to_dict()
    assert labels["classes"] == [False, True] and labels["positive_label"] is True


def test_comparison_with_registered_metrics() -> None:
    report = compute_performance([1, 0, 1, 1], [1, 0, 0, 1])
    table = compare_with_registered(report, {"Accuracy": 0.95, "f1_score": 0.5, "notes": "x", "flag": True})
    assert table["accuracy"]["live"] == 0.75 and table["accuracy"]["registered"] == 0.95
    assert table["accuracy"]["difference"] == pytest.approx(-0.2)
    assert table["accuracy"]["registered_name"] == "Accuracy"
    assert table["f1"]["registered"] == 0.5 and table["f1"]["difference"] == pytest.approx(0.8 - 0.5)
    assert table["precision"]["registered"] is None and table["precision"]["difference"] is None
    assert table["roc_auc"]["live"] is None and table["roc_auc"]["reason"] == "no probabilities given"
    assert isinstance(table["accuracy"]["registered_within_interval"], bool)


def _coverage_bounds(sims: int, nominal: float) -> tuple[int, int]:
    # a simulated coverage below nominal-0.02 or above nominal+0.04 is off at the 1e-3 level
    low = int(stats.binom.ppf(1e-3, sims, nominal - 0.02))
    high = int(stats.binom.isf(1e-3, sims, min(0.999, nominal + 0.04)))
    return low, high


def test_wilson_interval_covers_the_true_rate() -> None:
    rng = np.random.default_rng(11)
    sims, n, rate = 2000, 150, 0.3
    hits = rng.binomial(n, rate, sims)
    covered = 0
    for k in hits:
        interval = ci.wilson(int(k), n, 0.95)
        covered += interval.low <= rate <= interval.high
    low, high = _coverage_bounds(sims, 0.95)
    assert low <= covered <= high


def test_delong_interval_covers_the_true_auc() -> None:
    rng = np.random.default_rng(12)
    true_auc = stats.norm.cdf(1 / math.sqrt(2))  # N(1, 1) positives vs N(0, 1) negatives
    sims, covered = 400, 0
    for _ in range(sims):
        y = rng.random(200) < 0.4
        scores = rng.normal(size=200) + y
        _, interval = ci.delong(scores, y, 0.95)
        covered += interval.low <= true_auc <= interval.high
    low, high = _coverage_bounds(sims, 0.95)
    assert low <= covered <= high


def test_bootstrap_interval_covers_the_true_mae() -> None:
    rng = np.random.default_rng(13)
    true_mae = math.sqrt(2 / math.pi)  # E|e| for e ~ N(0, 1)
    sims, covered = 300, 0
    for seed in range(sims):
        y = rng.normal(size=200)
        report = compute_performance(y + rng.normal(size=200), y, n_bootstrap=300, seed=seed)
        interval = report.metrics["mae"].interval
        covered += interval.low <= true_mae <= interval.high
    low, high = _coverage_bounds(sims, 0.95)
    assert low <= covered <= high


def test_bootstrap_work_is_bounded() -> None:
    assert ci.resample_count(1_000, 1_000) == 1_000
    assert ci.resample_count(100_000, 1_000) == ci.BOOTSTRAP_BUDGET // 100_000
    assert ci.resample_count(10_000_000, 1_000) == ci.MIN_BOOTSTRAP_RESAMPLES
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 50_000)
    pred = np.where(rng.random(50_000) < 0.6, y, rng.integers(0, 3, 50_000))
    report = compute_performance(pred, y).to_dict()
    # confusion-matrix metrics resample the cells: the full count whatever the number of rows
    assert report["metrics"]["f1_macro"]["interval"]["resamples"] == 1_000


def test_core_imports_no_sklearn_or_web_framework() -> None:
    code = (
        "import sys, model_registry.monitoring.performance as m; "
        "bad = {'sklearn', 'fastapi', 'sqlalchemy'} & {n.split('.')[0] for n in sys.modules}; "
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
