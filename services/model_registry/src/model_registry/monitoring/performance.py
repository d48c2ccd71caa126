"""Live model performance from joined predictions and labels (numpy/scipy only, no web framework).

`compute_performance` returns every metric with its confidence interval and the number of labelled
predictions used; degenerate data gives `value=None` with a `reason`, never an exception. Only
malformed input (lengths or probability shapes that do not match) raises `PerformanceInputError`,
which the API layer renders as a 422. See MONITORING_PERFORMANCE.md for the metrics and intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from model_registry.monitoring import performance_intervals as ci
from model_registry.monitoring.performance_classification import classification_metrics
from model_registry.monitoring.performance_types import MetricResult, PerformanceInputError

Task = Literal["classification", "regression"]

# integer-valued predictions/labels with at most this many distinct values are class labels
MAX_INFERRED_CLASSES = 20

__all__ = [
    "MetricResult",
    "PerformanceInputError",
    "PerformanceReport",
    "compare_with_registered",
    "compute_performance",
    "infer_task",
]


@dataclass(frozen=True)
class PerformanceReport:
    task: Task
    n_rows: int
    n_labelled: int
    n_missing_label: int
    n_missing_prediction: int
    metrics: dict[str, MetricResult]
    classes: list[Any] = field(default_factory=list)
    positive_label: Any = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "n_labelled": self.n_labelled,
            "n_missing_label": self.n_missing_label,
            "n_missing_prediction": self.n_missing_prediction,
            "classes": [_plain(c) for c in self.classes],
            "positive_label": _plain(self.positive_label),
            "reason": self.reason,
            "metrics": {name: m.to_dict() for name, m in self.metrics.items()},
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _as_object(values: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise PerformanceInputError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr


def _missing(values: np.ndarray) -> np.ndarray:
    try:  # numbers (the common case) without a Python-level loop
        return np.isnan(values.astype(np.float64))
    except (TypeError, ValueError):
        pass

    def is_missing(v: Any) -> bool:
        return v is None or (isinstance(v, float | np.floating) and math.isnan(v))

    return np.fromiter((is_missing(v) for v in values), dtype=bool, count=values.size)


def _kind(values: np.ndarray) -> str:
    if values.size == 0:
        return "empty"
    types = set(map(type, values))
    if all(issubclass(t, bool | np.bool_) for t in types):
        return "bool"
    if all(issubclass(t, int | np.integer) and not issubclass(t, bool | np.bool_) for t in types):
        return "int"
    if all(issubclass(t, int | float | np.integer | np.floating) for t in types):
        floats = np.asarray(values, dtype=np.float64)
        return "intlike" if np.all(np.isfinite(floats) & (floats == np.round(floats))) else "float"
    return "str"


def infer_task(predictions: np.ndarray, labels: np.ndarray) -> Task:
    """Classification for bools, strings and integer values with few distinct values; else regression."""
    kinds = {_kind(predictions), _kind(labels)} - {"empty"}
    if not kinds or kinds & {"bool", "str"}:
        return "classification"
    if "float" in kinds:
        return "regression"
    distinct = np.unique(np.concatenate([predictions, labels]).astype(np.float64))
    return "classification" if distinct.size <= MAX_INFERRED_CLASSES else "regression"


def _class_values(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bring labels and predictions to one comparable dtype (1.0 from a NaN-holding column == 1)."""
    kinds = {_kind(predictions), _kind(labels)} - {"empty"}
    if kinds <= {"bool"}:
        return predictions.astype(bool), labels.astype(bool)
    if kinds <= {"int", "intlike"}:
        return predictions.astype(np.float64).astype(np.int64), labels.astype(np.float64).astype(np.int64)
    if kinds <= {"int", "intlike", "float", "bool"}:
        return predictions.astype(np.float64), labels.astype(np.float64)
    return predictions.astype(str), labels.astype(str)


def _probabilities(probabilities: Any, n_rows: int) -> np.ndarray | None:
    if probabilities is None:
        return None
    arr = np.asarray(probabilities, dtype=object)
    if arr.shape[:1] != (n_rows,) or arr.ndim not in (1, 2):
        raise PerformanceInputError(
            f"probabilities must have {n_rows} rows (1-D or 2-D), got shape {arr.shape}"
        )
    out = np.full(arr.shape, np.nan)
    flat = arr.reshape(-1)
    keep = ~_missing(flat)
    try:
        out.reshape(-1)[keep] = flat[keep].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PerformanceInputError("probabilities must be numbers") from exc
    return out


def compute_performance(
    predictions: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    probabilities: Sequence[Any] | np.ndarray | None = None,
    *,
    task: Task | None = None,
    classes: Sequence[Any] | None = None,
    positive_label: Any = None,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> PerformanceReport:
    """Metrics of `predictions` against `labels`; rows with a missing label or prediction are excluded
    and counted. `probabilities` is 1-D (the positive class, binary) or one column per class in the
    order of `classes` (sorted class values when not given)."""
    preds, labs = _as_object(predictions, "predictions"), _as_object(labels, "labels")
    if preds.size != labs.size:
        raise PerformanceInputError(f"{preds.size} predictions but {labs.size} labels")
    if not 0.0 < confidence < 1.0:
        raise PerformanceInputError("confidence must be between 0 and 1")
    probs = _probabilities(probabilities, preds.size)
    no_label, no_pred = _missing(labs), _missing(preds)
    keep = ~no_label & ~no_pred
    preds, labs = preds[keep], labs[keep]
    probs = probs[keep] if probs is not None else None
    resolved: Task = task or infer_task(preds, labs)
    base: dict[str, Any] = {
        "task": resolved,
        "n_rows": int(keep.size),
        "n_labelled": int(keep.sum()),
        "n_missing_label": int(no_label.sum()),
        "n_missing_prediction": int((no_pred & ~no_label).sum()),
    }
    options: dict[str, Any] = {
        "confidence": confidence,
        "n_bootstrap": max(1, int(n_bootstrap)),
        "seed": seed,
    }
    if resolved == "regression":
        return _regression_report(preds, labs, base, options)
    p, y = _class_values(preds, labs)
    metrics, used_classes, positive, reason = classification_metrics(
        p, y, probs, classes=classes, positive_label=positive_label, **options
    )
    return PerformanceReport(
        **base, metrics=metrics, classes=used_classes, positive_label=positive, reason=reason
    )


def _regression_report(
    preds: np.ndarray, labs: np.ndarray, base: dict[str, Any], options: dict[str, Any]
) -> PerformanceReport:
    names = ("mae", "rmse", "r2", "mape")
    try:
        p, y = preds.astype(np.float64), labs.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise PerformanceInputError("regression predictions and labels must be numbers") from exc
    if y.size == 0:
        reason = "insufficient data: no labelled predictions"
        return PerformanceReport(
            **base, metrics={n: MetricResult.empty(n, reason) for n in names}, reason=reason
        )
    metrics = {name: fn(p, y, options) for name, fn in _REGRESSION.items()}
    return PerformanceReport(**base, metrics=metrics)


def _row_metric(name: str, per_row: np.ndarray, options: dict[str, Any], sqrt: bool = False) -> MetricResult:
    n = per_row.size
    value = float(np.sqrt(per_row.mean())) if sqrt else float(per_row.mean())
    resamples = ci.resample_count(n, options["n_bootstrap"])

    def stat(idx: np.ndarray) -> np.ndarray:
        means: np.ndarray = per_row[idx].mean(axis=1)
        return np.sqrt(means) if sqrt else means

    interval = ci.bootstrap_rows(
        n, stat, resamples=resamples, seed=options["seed"], confidence=options["confidence"]
    )
    return MetricResult(name, value, n, interval)


def _mae(p: np.ndarray, y: np.ndarray, options: dict[str, Any]) -> MetricResult:
    return _row_metric("mae", np.abs(y - p), options)


def _rmse(p: np.ndarray, y: np.ndarray, options: dict[str, Any]) -> MetricResult:
    return _row_metric("rmse", (y - p) ** 2, options, sqrt=True)


def _mape(p: np.ndarray, y: np.ndarray, options: dict[str, Any]) -> MetricResult:
    if np.any(y == 0):
        return MetricResult.empty("mape", "undefined: some labels are zero", y.size)
    return _row_metric("mape", np.abs(y - p) / np.abs(y), options)


def _r2(p: np.ndarray, y: np.ndarray, options: dict[str, Any]) -> MetricResult:
    n = y.size
    if n < 2 or np.all(y == y[0]):
        return MetricResult.empty("r2", "undefined: labels are constant", n)
    value = float(1.0 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    resid = (y - p) ** 2

    def stat(idx: np.ndarray) -> np.ndarray:
        ys = y[idx]
        ss_tot = np.sum((ys - ys.mean(axis=1, keepdims=True)) ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ss_tot > 0, 1.0 - resid[idx].sum(axis=1) / ss_tot, np.nan)

    resamples = ci.resample_count(n, options["n_bootstrap"], cost_per_row=3)
    interval = ci.bootstrap_rows(
        n, stat, resamples=resamples, seed=options["seed"], confidence=options["confidence"]
    )
    return MetricResult("r2", value, n, interval)


_REGRESSION = {"mae": _mae, "rmse": _rmse, "r2": _r2, "mape": _mape}

# names a version's registered metrics commonly use for the metrics computed here
_ALIASES = {
    "acc": "accuracy",
    "accuracy_score": "accuracy",
    "auc": "roc_auc",
    "roc_auc_score": "roc_auc",
    "rocauc": "roc_auc",
    "f1_score": "f1",
    "precision_score": "precision",
    "recall_score": "recall",
    "logloss": "log_loss",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
    "r2_score": "r2",
    "mean_absolute_percentage_error": "mape",
}


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def registered_values(registered: Mapping[str, Any]) -> dict[str, float]:
    """The numeric registered metrics under the live metrics' names (the first of each alias)."""
    out: dict[str, float] = {}
    for name, value in registered.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.setdefault(_canonical(name), float(value))
    return out


def compare_with_registered(
    live: PerformanceReport | Mapping[str, MetricResult], registered: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each live metric beside the value the version was registered with, and the difference
    (live - registered). Registered names are matched case-insensitively, with common aliases
    (auc -> roc_auc, f1_score -> f1, ...); non-numeric registered values are ignored."""
    metrics = live.metrics if isinstance(live, PerformanceReport) else live
    reference: dict[str, tuple[str, float]] = {}
    for name, value in registered.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            reference.setdefault(_canonical(name), (name, float(value)))
    out: dict[str, dict[str, Any]] = {}
    for name, metric in metrics.items():
        reg_name, reg_value = reference.get(name, (None, None))
        diff = metric.value - reg_value if metric.value is not None and reg_value is not None else None
        within = None
        if reg_value is not None and metric.interval is not None:
            within = metric.interval.low <= reg_value <= metric.interval.high
        out[name] = {
            "live": metric.value,
            "registered": reg_value,
            "registered_name": reg_name,
            "difference": diff,
            "registered_within_interval": within,
            "n": metric.n,
            "reason": metric.reason,
        }
    return out
