"""scikit-learn-like estimators (anything with `predict`): joblib/pickle files and MLflow's sklearn flavor."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from model_serving.loading.base import Classes, MatrixModel
from model_serving.loading.errors import ModelLoadError
from model_serving.loading.forest import ForestPath
from model_serving.loading.inputs import Matrix
from model_serving.loading.signature import Prediction, Signature


class SklearnModel(MatrixModel):
    def __init__(self, estimator: Any, flavor: str = "sklearn", declared: Signature | None = None) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ModelLoadError(f"the file holds a {type(estimator).__name__}, which has no predict method")
        self._estimator = estimator
        self._predict_proba = getattr(estimator, "predict_proba", None)
        classes = getattr(estimator, "classes_", None)
        self._classes = Classes(classes) if classes is not None else None
        outputs = ("prediction", "probability") if self._predict_proba else ("prediction",)
        super().__init__(flavor, estimator_signature(estimator, declared, outputs))
        if self.signature.names is not None:
            # we pass arrays already in the fitted column order; the warning would cost every call
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
        self._forest = ForestPath.build(estimator)

    def _predict_matrix(self, matrix: Matrix) -> Prediction:
        if self._forest is not None and np.isfinite(matrix).all():
            return self._forest.predict(matrix)
        predictions = np.asarray(self._estimator.predict(matrix)).tolist()
        classes = list(self._classes.values) if self._classes is not None else None
        if self._predict_proba is None:
            return Prediction(predictions, None, classes)
        proba = np.asarray(self._predict_proba(matrix), dtype=np.float64)
        return Prediction(predictions, proba.tolist(), classes)


def load_joblib(file: Path) -> SklearnModel:
    """joblib.load reads joblib files (compressed or not) and plain pickles alike."""
    import joblib

    try:
        estimator = joblib.load(file)
    except Exception as exc:
        raise ModelLoadError.unreadable(file.name, "pickle/joblib file", exc) from exc
    return SklearnModel(estimator)


def estimator_signature(estimator: Any, declared: Signature | None, outputs: tuple[str, ...]) -> Signature:
    """The fitted column names and count, with types from a declared (MLflow) signature when it agrees."""
    names = getattr(estimator, "feature_names_in_", None)
    fitted = tuple(str(n) for n in names) if names is not None else None
    n_features = _n_features(estimator)
    if declared is None:
        return Signature(fitted, n_features, None, outputs)
    if n_features is not None and declared.n_features not in (None, n_features):
        declares = f"the signature declares {declared.n_features} inputs"
        raise ModelLoadError(f"{declares} but the model takes {n_features} features")
    if fitted is None:
        return Signature(declared.names, declared.n_features or n_features, declared.types, outputs)
    return Signature(fitted, len(fitted), _types_by_name(declared, fitted), outputs)


def _n_features(estimator: Any) -> int | None:
    try:
        n = getattr(estimator, "n_features_in_", None)
    except Exception:  # a Pipeline whose first step is "passthrough" raises here
        return None
    return int(n) if n is not None else None


def _types_by_name(declared: Signature, names: tuple[str, ...]) -> tuple[str, ...] | None:
    if declared.types is None:
        return None
    if declared.names is None:
        return declared.types if len(declared.types) == len(names) else None
    by_name = dict(zip(declared.names, declared.types, strict=True))
    return tuple(by_name[n] for n in names) if all(n in by_name for n in names) else None
