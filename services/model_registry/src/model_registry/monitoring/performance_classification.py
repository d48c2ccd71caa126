"""Classification metrics from a confusion matrix and class probabilities (numpy/scipy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from model_registry.monitoring import performance_intervals as ci
from model_registry.monitoring.performance_types import MetricResult, PerformanceInputError

BINARY_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
MULTICLASS_NAMES = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
)
PROB_TOLERANCE = 1e-6


def _resolve_classes(
    p: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None, positive_label: Any
) -> np.ndarray:
    observed = np.unique(np.concatenate([p, y]))
    if classes is not None:
        declared = np.asarray(list(classes))
        if observed.dtype.kind == "U" and declared.dtype.kind == "U":  # the wider, or names get cut
            given = declared.astype(np.result_type(observed.dtype, declared.dtype))
        else:
            given = declared.astype(observed.dtype if observed.size else object)
        unknown = np.setdiff1d(observed, given)
        if unknown.size:
            raise PerformanceInputError(f"values outside the declared classes: {unknown[:5].tolist()}")
        return given
    values = set(observed.tolist())
    if values <= {0, 1} and observed.dtype != object:
        base = np.array([False, True]) if observed.dtype == bool else np.array([0, 1], dtype=observed.dtype)
        return base
    if positive_label is not None and observed.size == 1:
        return np.unique(np.concatenate([observed, np.asarray([positive_label]).astype(observed.dtype)]))
    return observed


def _encode(values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    order = np.argsort(classes, kind="stable")
    pos = np.searchsorted(classes[order], values)
    return order[np.clip(pos, 0, classes.size - 1)]


def _confusion(y: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den is 0 (scikit-learn's zero_division default inside averages)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _per_class(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1, support and presence for a batch of confusion matrices."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    support = cm.sum(axis=-1).astype(np.float64)
    predicted = cm.sum(axis=-2).astype(np.float64)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, support + predicted)
    return precision, recall, f1, support, (support + predicted) > 0


def _macro(kind: int) -> Any:
    def stat(cm: np.ndarray) -> np.ndarray:
        parts = _per_class(cm)
        present = parts[4]
        macro: np.ndarray = (parts[kind] * present).sum(axis=-1) / present.sum(axis=-1)
        return macro

    return stat


def _weighted(kind: int) -> Any:
    def stat(cm: np.ndarray) -> np.ndarray:
        parts = _per_class(cm)
        support = parts[3]
        weighted: np.ndarray = (parts[kind] * support).sum(axis=-1) / support.sum(axis=-1)
        return weighted

    return stat


def _binary_f1(pos: int) -> Any:
    def stat(cm: np.ndarray) -> np.ndarray:
        tp = cm[..., pos, pos].astype(np.float64)
        den = cm[..., pos, :].sum(axis=-1) + cm[..., :, pos].sum(axis=-1)
        return _safe_div(2 * tp, den.astype(np.float64))

    return stat


def _confusion_metric(name: str, cm: np.ndarray, stat: Any, options: dict[str, Any]) -> MetricResult:
    value = float(stat(cm[None])[0])
    interval = ci.bootstrap_confusion(
        cm, stat, resamples=options["n_bootstrap"], seed=options["seed"], confidence=options["confidence"]
    )
    return MetricResult(name, value, int(cm.sum()), interval)


def _proportion(name: str, hits: int, trials: int, n: int, options: dict[str, Any], why: str) -> MetricResult:
    if trials == 0:
        return MetricResult.empty(name, why, n)
    return MetricResult(name, hits / trials, n, ci.wilson(hits, trials, options["confidence"]))


def _binary_metrics(cm: np.ndarray, pos: int, options: dict[str, Any]) -> dict[str, MetricResult]:
    n = int(cm.sum())
    tp = int(cm[pos, pos])
    predicted_pos, actual_pos = int(cm[:, pos].sum()), int(cm[pos, :].sum())
    f1: MetricResult
    if predicted_pos + actual_pos == 0:
        f1 = MetricResult.empty("f1", "undefined: no positive labels and no positive predictions", n)
    else:
        f1 = _confusion_metric("f1", cm, _binary_f1(pos), options)
    return {
        "precision": _proportion(
            "precision", tp, predicted_pos, n, options, "undefined: no positive predictions"
        ),
        "recall": _proportion("recall", tp, actual_pos, n, options, "undefined: no positive labels"),
        "f1": f1,
    }


def _multiclass_metrics(cm: np.ndarray, options: dict[str, Any]) -> dict[str, MetricResult]:
    out: dict[str, MetricResult] = {}
    for kind, label in enumerate(("precision", "recall", "f1")):
        out[f"{label}_macro"] = _confusion_metric(f"{label}_macro", cm, _macro(kind), options)
        out[f"{label}_weighted"] = _confusion_metric(f"{label}_weighted", cm, _weighted(kind), options)
    return out


def _probability_matrix(probs: np.ndarray, k: int, pos: int) -> tuple[np.ndarray | None, str | None]:
    """Rows x classes probabilities, or a reason they cannot be used."""
    if np.isnan(probs).any():
        return None, "undefined: some labelled predictions have no probability"
    if probs.size and (probs.min() < 0 or probs.max() > 1):
        return None, "undefined: probabilities outside [0, 1]"
    if probs.ndim == 1:
        if k != 2:
            return None, "undefined: one probability per row needs a binary task; give one per class"
        matrix = np.empty((probs.size, 2))
        matrix[:, pos], matrix[:, 1 - pos] = probs, 1.0 - probs
        return matrix, None
    if probs.shape[1] != k:
        return None, f"undefined: {probs.shape[1]} probability columns for {k} classes"
    if probs.size and np.abs(probs.sum(axis=1) - 1.0).max() > PROB_TOLERANCE:
        return None, "undefined: class probabilities do not sum to one"
    return probs, None


def _log_loss(matrix: np.ndarray, y: np.ndarray, options: dict[str, Any]) -> MetricResult:
    eps = np.finfo(np.float64).eps
    per_row = -np.log(np.clip(matrix[np.arange(y.size), y], eps, 1 - eps))
    n = y.size
    resamples = ci.resample_count(n, options["n_bootstrap"])
    interval = ci.bootstrap_rows(
        n,
        lambda idx: per_row[idx].mean(axis=1),
        resamples=resamples,
        seed=options["seed"],
        confidence=options["confidence"],
    )
    return MetricResult("log_loss", float(per_row.mean()), n, interval)


def _ovr_auc(matrix: np.ndarray, y: np.ndarray) -> float:
    aucs = [
        ci.auc_mann_whitney(matrix[:, c], y == c) for c in np.unique(y) if 0 < int((y == c).sum()) < y.size
    ]
    return float(np.mean(aucs)) if aucs else float("nan")


def _roc_auc(matrix: np.ndarray, y: np.ndarray, pos: int, k: int, options: dict[str, Any]) -> MetricResult:
    n = y.size
    present = np.unique(y)
    if present.size < 2:
        return MetricResult.empty("roc_auc", "undefined: only one class among the labels", n)
    if k == 2:
        value, interval = ci.delong(matrix[:, pos], y == pos, options["confidence"])
        return MetricResult("roc_auc", value, n, interval)
    resamples = ci.resample_count(n, options["n_bootstrap"], cost_per_row=8 * present.size)
    boot = ci.bootstrap_rows(
        n,
        lambda idx: np.array([_ovr_auc(matrix[row], y[row]) for row in idx]),
        resamples=resamples,
        seed=options["seed"],
        confidence=options["confidence"],
    )
    return MetricResult("roc_auc", _ovr_auc(matrix, y), n, boot)


def classification_metrics(
    p_values: np.ndarray,
    y_values: np.ndarray,
    probs: np.ndarray | None,
    *,
    classes: Sequence[Any] | None,
    positive_label: Any,
    confidence: float,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict[str, MetricResult], list[Any], Any, str | None]:
    """(metrics, classes, positive label or None, report-level reason)."""
    options = {"confidence": confidence, "n_bootstrap": n_bootstrap, "seed": seed}
    cls = _resolve_classes(p_values, y_values, classes, positive_label)
    k = cls.size
    binary = k <= 2
    names = BINARY_NAMES if binary else MULTICLASS_NAMES
    if y_values.size == 0:
        reason = "insufficient data: no labelled predictions"
        return {n: MetricResult.empty(n, reason) for n in names}, cls.tolist(), None, reason
    pos_value = cls[-1] if positive_label is None else positive_label
    if binary and pos_value not in set(cls.tolist()):
        raise PerformanceInputError(f"positive label {pos_value!r} is not one of the classes")
    pos = int(_encode(np.asarray([pos_value]).astype(cls.dtype), cls)[0]) if binary else 0
    y, p = _encode(y_values, cls), _encode(p_values, cls)
    cm = _confusion(y, p, k)
    n = int(y.size)
    correct = int(np.trace(cm))
    metrics = {"accuracy": MetricResult("accuracy", correct / n, n, ci.wilson(correct, n, confidence))}
    metrics |= _binary_metrics(cm, pos, options) if binary and k == 2 else {}
    if binary and k < 2:
        why = "undefined: only one class in predictions and labels; declare the classes"
        metrics |= {name: MetricResult.empty(name, why, n) for name in ("precision", "recall", "f1")}
    if not binary:
        metrics |= _multiclass_metrics(cm, options)
    metrics |= _probability_metrics(probs, y, pos, k, options)
    positive = pos_value if binary else None
    return {name: metrics[name] for name in names}, cls.tolist(), positive, None


def _probability_metrics(
    probs: np.ndarray | None, y: np.ndarray, pos: int, k: int, options: dict[str, Any]
) -> dict[str, MetricResult]:
    n = int(y.size)
    if probs is None:
        why = "no probabilities given"
        return {
            "roc_auc": MetricResult.empty("roc_auc", why, n),
            "log_loss": MetricResult.empty("log_loss", why, n),
        }
    if k < 2:
        why = "undefined: only one class in predictions and labels; declare the classes"
        return {
            "roc_auc": MetricResult.empty("roc_auc", why, n),
            "log_loss": MetricResult.empty("log_loss", why, n),
        }
    matrix, why_not = _probability_matrix(probs, k, pos)
    if matrix is None:
        reason = why_not or "undefined"
        return {
            "roc_auc": MetricResult.empty("roc_auc", reason, n),
            "log_loss": MetricResult.empty("log_loss", reason, n),
        }
    return {"roc_auc": _roc_auc(matrix, y, pos, k, options), "log_loss": _log_loss(matrix, y, options)}
