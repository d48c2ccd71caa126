"""The python callables of the training pipeline template (``training_pipeline.json``).

load → validate → tune (hpo, :func:`objective` per trial) → train → evaluate → log (tracking) →
register (registry, only if it beats ``production``). A real scikit-learn model
(``RandomForestClassifier``) on a dataset that ships with scikit-learn (no download):
``breast_cancer`` (binary, 569 rows), ``iris`` (3 classes, 150 rows) or ``wine`` (3 classes, 178 rows).

Data moves between tasks as artifacts: ``load`` stores the train and test splits as ``.npz``
files (``X``, ``y``) in the orchestrator's artifact store and later tasks read them back by URI;
``train`` stores the fitted model as ``model.pkl`` (joblib), which ``register`` uploads to the
registry.

Metrics (``accuracy``, ``f1``, ``precision``, ``recall``, ``balanced_accuracy``; f1, precision and
recall are macro averages, so binary and multi-class datasets are scored alike) are all
"higher is better". The pipeline parameter ``metric`` picks the one the search maximises (the
trials' ``score``) and the one registration compares against the ``production`` version.

The search space is the platform docs' (``n_estimators``, ``max_depth``) with ``n_estimators``
kept at 10-100 (step 10) rather than 50-200: a trial (3-fold cross-validation, one core) then
takes about 0.3-2 s on breast_cancer, so the default 8 trials, 4 at a time, finish in seconds.

Every function takes the worker's ``TaskContext`` as ``context`` and uses only its
``save_artifact(name, bytes) -> uri`` and ``artifact_path(uri) -> Path``, so they can also be
called directly (tests, notebooks) with any object offering those two.
"""

from __future__ import annotations

import io
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("mlops.templates.training")

DATASETS = ("breast_cancer", "iris", "wine")
# pipeline metric name → scikit-learn scorer name (cross-validation) ; all are "higher is better"
SCORERS = {
    "accuracy": "accuracy",
    "f1": "f1_macro",
    "precision": "precision_macro",
    "recall": "recall_macro",
    "balanced_accuracy": "balanced_accuracy",
}
MIN_ROWS_PER_CLASS = 10


class Context(Protocol):
    """What these callables use of the worker's ``TaskContext``."""

    def save_artifact(self, name: str, data: bytes) -> str: ...

    def artifact_path(self, uri_or_path: str) -> Path: ...


class DataValidationError(ValueError):
    """The data failed the ``validate`` task's checks; the message lists every failed check."""


class TemplateInputError(ValueError):
    """An input of a template task that cannot work (unknown dataset or metric, bad split size)."""


# helpers ----------------------------------------------------------------------------------------
def _require_sklearn() -> None:
    """A clear error where scikit-learn is missing (the service image installs only the service's
    own dependencies; scikit-learn comes with the workspace's dev group)."""
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise ModuleNotFoundError(
            "the training template needs scikit-learn (and joblib, numpy) on the worker that runs "
            "it: `uv sync --all-packages` in the workspace, or `pip install scikit-learn` in the "
            "worker's image",
            name="sklearn",
        )


def _check_metric(metric: str) -> str:
    if metric not in SCORERS:
        raise TemplateInputError(f"unknown metric {metric!r}; use one of {', '.join(SCORERS)}")
    return metric


def _save_split(context: Context, name: str, X: np.ndarray, y: np.ndarray) -> str:
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    return context.save_artifact(name, buffer.getvalue())


def _load_split(context: Context, uri: str) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    with np.load(context.artifact_path(uri), allow_pickle=False) as data:
        return data["X"], data["y"]


def _class_counts(y: np.ndarray) -> dict[str, int]:
    import numpy as np

    labels, counts = np.unique(y, return_counts=True)
    return {str(label): int(count) for label, count in zip(labels.tolist(), counts.tolist(), strict=True)}


def _forest(params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    known = {"n_estimators", "max_depth", "min_samples_split", "min_samples_leaf", "max_features"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TemplateInputError(
            f"unknown RandomForestClassifier parameter(s) {unknown}; use {sorted(known)}"
        )
    # n_jobs=1: trials already run in parallel, one per worker process
    return RandomForestClassifier(**params, random_state=seed, n_jobs=1)


def _test_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        precision_score,
        recall_score,
    )

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
    }


# tasks ------------------------------------------------------------------------------------------
def load_dataset(
    dataset: str = "breast_cancer", test_size: float = 0.25, seed: int = 42, *, context: Context
) -> dict[str, Any]:
    """Load a scikit-learn dataset and split it (stratified, ``seed``-deterministic) into train and
    test sets stored as ``train.npz`` / ``test.npz`` artifacts."""
    _require_sklearn()
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if dataset not in DATASETS:
        raise TemplateInputError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    if not 0 < float(test_size) < 1:
        raise TemplateInputError(f"test_size must be between 0 and 1 (a fraction), not {test_size}")
    bunch = getattr(datasets, f"load_{dataset}")()
    X, y = bunch.data, bunch.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=float(test_size), random_state=int(seed), stratify=y
    )
    train_uri = _save_split(context, "train.npz", X_train, y_train)
    test_uri = _save_split(context, "test.npz", X_test, y_test)
    log.info("%s: %d train rows, %d test rows, %d features", dataset, len(y_train), len(y_test), X.shape[1])
    return {
        "dataset": dataset,
        "train_uri": train_uri,
        "test_uri": test_uri,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": int(X.shape[1]),
        "feature_names": [str(n) for n in bunch.feature_names],
        "classes": [int(c) for c in sorted(set(y.tolist()))],
        "class_names": [str(n) for n in bunch.target_names],
        "train_class_counts": _class_counts(y_train),
        "test_class_counts": _class_counts(y_test),
    }


def validate_dataset(
    train_uri: str,
    test_uri: str,
    min_rows_per_class: int = MIN_ROWS_PER_CLASS,
    cv_folds: int = 3,
    *,
    context: Context,
) -> dict[str, Any]:
    """Check the splits before any training: numeric, no NaN or infinite value, the same features on
    both sides, at least two classes, enough training rows per class (``min_rows_per_class`` and at
    least ``cv_folds``), no class in test that training never saw. Raises
    :class:`DataValidationError` listing every failed check; returns a small report otherwise."""
    import numpy as np

    X_train, y_train = _load_split(context, train_uri)
    X_test, y_test = _load_split(context, test_uri)
    problems: list[str] = []
    checks: list[str] = []

    def check(name: str, ok: bool, problem: str) -> None:
        checks.append(name)
        if not ok:
            problems.append(problem)

    for side, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        check(f"{side}_2d", X.ndim == 2, f"{side}: X has {X.ndim} dimension(s), expected 2 (rows x features)")
        check(
            f"{side}_rows_match",
            len(X) == len(y),
            f"{side}: {len(X)} feature rows but {len(y)} labels",
        )
        check(f"{side}_not_empty", len(y) > 0, f"{side}: no rows")
        numeric = np.issubdtype(X.dtype, np.number)
        check(f"{side}_numeric", numeric, f"{side}: features are {X.dtype}, not numeric")
        if numeric:
            bad = int(np.size(X) - np.count_nonzero(np.isfinite(X)))
            check(f"{side}_finite", bad == 0, f"{side}: {bad} NaN or infinite feature value(s)")
        if np.issubdtype(y.dtype, np.floating):
            nan_labels = int(np.count_nonzero(np.isnan(y)))
            check(f"{side}_labels_present", nan_labels == 0, f"{side}: {nan_labels} missing (NaN) label(s)")
    n_train_features = X_train.shape[1] if X_train.ndim == 2 else None
    n_test_features = X_test.shape[1] if X_test.ndim == 2 else None
    check(
        "feature_counts_match",
        n_train_features == n_test_features,
        f"train has {n_train_features} features, test has {n_test_features}",
    )
    counts = _class_counts(y_train)
    check("two_classes", len(counts) >= 2, f"train has {len(counts)} class(es); a classifier needs 2 or more")
    needed = max(int(min_rows_per_class), int(cv_folds))
    small = {label: n for label, n in counts.items() if n < needed}
    check(
        "rows_per_class",
        not small,
        f"train has too few rows for class(es) {small}: at least {needed} each "
        f"(min_rows_per_class={min_rows_per_class}, cv_folds={cv_folds})",
    )
    unseen = sorted(set(_class_counts(y_test)) - set(counts))
    check("test_classes_seen", not unseen, f"test has class(es) {unseen} that train does not")
    if problems:
        raise DataValidationError(f"the data failed {len(problems)} check(s): " + "; ".join(problems))
    log.info("data valid: %d checks passed", len(checks))
    return {
        "valid": True,
        "checks": checks,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "n_features": n_train_features,
        "n_classes": len(counts),
        "min_class_count": min(counts.values()),
        "train_class_counts": counts,
    }


def objective(
    params: dict[str, Any],
    train_uri: str,
    metric: str = "accuracy",
    cv_folds: int = 3,
    seed: int = 42,
    *,
    context: Context,
) -> dict[str, float]:
    """One hpo trial: a ``RandomForestClassifier`` with ``params``, scored by stratified
    ``cv_folds``-fold cross-validation on the training split. Returns the mean of every metric and
    ``score`` = the mean of ``metric`` (what the search maximises), with its standard deviation."""
    _require_sklearn()
    from sklearn.model_selection import StratifiedKFold, cross_validate

    _check_metric(metric)
    X, y = _load_split(context, train_uri)
    started = time.perf_counter()
    folds = StratifiedKFold(n_splits=int(cv_folds), shuffle=True, random_state=int(seed))
    scores = cross_validate(_forest(params, int(seed)), X, y, cv=folds, scoring=SCORERS, n_jobs=1)
    result = {name: float(scores[f"test_{name}"].mean()) for name in SCORERS}
    result["score"] = result[metric]
    result["score_std"] = float(scores[f"test_{metric}"].std())
    result["fit_seconds"] = time.perf_counter() - started
    log.info("params %s: cv %s = %.4f ± %.4f", params, metric, result["score"], result["score_std"])
    return result


def train_model(
    train_uri: str, best_params: dict[str, Any], seed: int = 42, *, context: Context
) -> dict[str, Any]:
    """Fit the final ``RandomForestClassifier`` with the search's best parameters on the whole
    training split; stored as ``model.pkl`` (joblib)."""
    _require_sklearn()
    import joblib

    X, y = _load_split(context, train_uri)
    model = _forest(dict(best_params), int(seed))
    started = time.perf_counter()
    model.fit(X, y)
    took = time.perf_counter() - started
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    model_uri = context.save_artifact("model.pkl", buffer.getvalue())
    log.info("trained %s on %d rows in %.2fs", model, len(y), took)
    return {
        "model_uri": model_uri,
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "params": {**best_params, "random_state": int(seed)},
        "n_train": len(y),
        "n_features": int(X.shape[1]),
        "classes": [int(c) for c in model.classes_.tolist()],
        "fit_seconds": took,
    }


def evaluate_model(
    model_uri: str,
    test_uri: str,
    metric: str = "accuracy",
    promote: bool = True,
    alias: str = "production",
    *,
    context: Context,
) -> dict[str, Any]:
    """Score the final model on the held-out test split.

    ``promote_alias`` is ``alias`` when ``promote`` is on and None otherwise: the register step's
    ``alias`` input takes it (a template cannot turn a bool parameter into "alias or nothing")."""
    _require_sklearn()
    import joblib
    from sklearn.metrics import confusion_matrix

    _check_metric(metric)
    model = joblib.load(context.artifact_path(model_uri))
    X, y = _load_split(context, test_uri)
    predicted = model.predict(X)
    metrics = _test_metrics(y, predicted)
    if not all(math.isfinite(v) for v in metrics.values()):
        raise ValueError(f"non-finite test metrics {metrics}")
    log.info("test metrics: %s", {k: round(v, 4) for k, v in metrics.items()})
    return {
        "metrics": metrics,
        "metric": metric,
        "value": metrics[metric],
        "n_test": len(y),
        "confusion_matrix": confusion_matrix(y, predicted).tolist(),
        "promote_alias": alias if promote else None,
    }
