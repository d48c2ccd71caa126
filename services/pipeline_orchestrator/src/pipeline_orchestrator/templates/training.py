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
# promote: production moves to the new version; canary: a canary rollout against production
# decides on live traffic; none: registered only
ROLLOUTS = ("promote", "canary", "none")


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


MAX_TABLE_ROWS = 1_000_000
MAX_TABLE_COLUMNS = 10_000


def _bundled(dataset: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    from sklearn import datasets

    if dataset not in DATASETS:
        raise TemplateInputError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
    bunch = getattr(datasets, f"load_{dataset}")()
    return (
        bunch.data,
        bunch.target,
        [str(n) for n in bunch.feature_names],
        [str(n) for n in bunch.target_names],
    )


def _table_name(uri: str) -> str:
    return Path(uri.rstrip("/")).name[:200] or "table"


def _read_table(
    context: Context, uri: str, label_column: str
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """A CSV or parquet table: every column but ``label_column`` a numeric feature."""
    import numpy as np
    import pyarrow.compute as pc

    path = context.artifact_path(uri)
    if not path.is_file():
        raise TemplateInputError(f"data_uri {uri!r}: no such file")
    table = _arrow_table(path, uri)
    if table.num_rows > MAX_TABLE_ROWS or table.num_columns > MAX_TABLE_COLUMNS:
        raise TemplateInputError(
            f"data_uri {uri!r} has {table.num_rows} rows x {table.num_columns} columns; "
            f"at most {MAX_TABLE_ROWS} x {MAX_TABLE_COLUMNS}"
        )
    if label_column not in table.column_names:
        raise TemplateInputError(f"data_uri {uri!r} has no label column {label_column!r}")
    features = [c for c in table.column_names if c != label_column]
    if not features:
        raise TemplateInputError(f"data_uri {uri!r} has no feature column besides {label_column!r}")
    try:
        X = np.column_stack([pc.cast(table[c], "float64").to_numpy(zero_copy_only=False) for c in features])
        y = pc.cast(table[label_column], "int64").to_numpy(zero_copy_only=False)
    except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise TemplateInputError(
            f"data_uri {uri!r}: features must be numeric and {label_column!r} integer ({exc})"
        ) from None
    return X, y, features, [str(c) for c in sorted(set(y.tolist()))]


def _arrow_table(path: Path, uri: str) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(path)
    except (OSError, ValueError) as exc:
        raise TemplateInputError(f"data_uri {uri!r} is not a readable {suffix[1:]} table ({exc})") from None
    raise TemplateInputError(f"data_uri {uri!r}: a .csv or .parquet file, not {suffix or 'no suffix'!r}")


# tasks ------------------------------------------------------------------------------------------
def load_dataset(
    dataset: str = "breast_cancer",
    test_size: float = 0.25,
    seed: int = 42,
    data_uri: str = "",
    label_column: str = "label",
    *,
    context: Context,
) -> dict[str, Any]:
    """Load a scikit-learn dataset, or with ``data_uri`` a CSV or parquet table (numeric feature
    columns and the integer ``label_column``), and split it (stratified, ``seed``-deterministic)
    into train and test sets stored as ``train.npz`` / ``test.npz`` artifacts.

    ``data_uri`` is an artifact URI of the orchestrator's store or a path the worker can read
    (retraining on the data a loop collected); it is read as data only (pyarrow), never unpickled."""
    _require_sklearn()
    from sklearn.model_selection import train_test_split

    if not 0 < float(test_size) < 1:
        raise TemplateInputError(f"test_size must be between 0 and 1 (a fraction), not {test_size}")
    if data_uri:
        X, y, feature_names, class_names = _read_table(context, str(data_uri), str(label_column))
        dataset = _table_name(str(data_uri))
    else:
        X, y, feature_names, class_names = _bundled(dataset)
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
        "feature_names": feature_names,
        "classes": [int(c) for c in sorted(set(y.tolist()))],
        "class_names": class_names,
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
    rollout: str = "promote",
    only_if_better: bool = True,
    *,
    context: Context,
) -> dict[str, Any]:
    """Score the final model on the held-out test split, and plan the release.

    A template cannot turn a parameter into "this or nothing", so the plan is outputs the later
    steps take: ``promote_alias`` is ``alias`` when ``rollout`` is ``promote`` and ``promote`` is on,
    else None (register's ``alias``); ``canary`` is whether ``start_canary`` starts a canary of the
    registered version against ``alias`` (``rollout: canary``); ``register_rule`` is register's
    ``only_if_better`` rule, or None with ``only_if_better`` off (every candidate registered: with a
    canary, live traffic decides)."""
    _require_sklearn()
    import joblib
    from sklearn.metrics import confusion_matrix

    _check_metric(metric)
    if rollout not in ROLLOUTS:
        raise TemplateInputError(f"unknown rollout {rollout!r}; use one of {', '.join(ROLLOUTS)}")
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
        "promote_alias": alias if promote and rollout == "promote" else None,
        "canary": rollout == "canary",
        "register_rule": (
            {"metric": metric, "alias": alias, "direction": "maximize"} if only_if_better else None
        ),
    }
