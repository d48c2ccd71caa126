"""XGBoost native model files (JSON or UBJSON learner, legacy .model/.bst) served by `inplace_predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from model_serving.loading.base import Classes, MatrixModel, regression_prediction
from model_serving.loading.errors import ModelLoadError
from model_serving.loading.inputs import Matrix
from model_serving.loading.signature import Prediction, Signature

# XGBoost feature types in MLflow's colspec vocabulary ("c" is a categorical's integer code)
_TYPES = {"float": "float", "q": "float", "int": "long", "i": "boolean", "c": "long"}
_LABEL_OBJECTIVES = frozenset({"binary:hinge", "multi:softmax"})


class XGBoostModel(MatrixModel):
    def __init__(self, booster: Any) -> None:
        learner = json.loads(booster.save_config())["learner"]
        self._objective = str(learner["objective"]["name"])
        n_classes = int(learner["learner_model_param"].get("num_class", "0") or 0)
        self._classes = _classes(self._objective, n_classes)
        # one thread per call: requests run side by side, and a thread pool per row costs milliseconds
        booster.set_param({"nthread": 1})
        self._booster = booster
        outputs = ("prediction", "probability") if self._has_proba() else ("prediction",)
        super().__init__("xgboost", _signature(booster, outputs))

    def _predict_matrix(self, matrix: Matrix) -> Prediction:
        raw = np.asarray(self._booster.inplace_predict(matrix))
        if self._objective == "binary:logistic":
            # XGBClassifier.predict_proba's arithmetic, in the booster's float32
            return self._with_classes(np.vstack((1.0 - raw, raw)).transpose())
        if self._objective == "multi:softprob":
            return self._with_classes(raw)
        if self._objective in _LABEL_OBJECTIVES:
            return Prediction(raw.astype(np.int64).tolist(), None, self._class_values())
        return regression_prediction(raw)

    def _with_classes(self, proba: np.ndarray) -> Prediction:
        assert self._classes is not None
        return self._classes.prediction(proba)

    def _has_proba(self) -> bool:
        return self._objective in ("binary:logistic", "multi:softprob")

    def _class_values(self) -> list[Any] | None:
        return list(self._classes.values) if self._classes is not None else None


def load_xgboost(file: Path) -> XGBoostModel:
    try:
        # from bytes, XGBoost tells JSON, UBJSON and its legacy binary apart by content, not by name
        booster = xgboost.Booster()
        booster.load_model(bytearray(file.read_bytes()))
    except Exception as exc:
        raise ModelLoadError.unreadable(file.name, "XGBoost model", exc) from exc
    return XGBoostModel(booster)


def _classes(objective: str, n_classes: int) -> Classes | None:
    if objective.startswith("binary:") and objective != "binary:logitraw":
        return Classes([0, 1])
    if objective.startswith("multi:") and n_classes > 0:
        return Classes(list(range(n_classes)))
    return None


def _signature(booster: Any, outputs: tuple[str, ...]) -> Signature:
    names = tuple(booster.feature_names) if booster.feature_names else None
    kinds = booster.feature_types
    types = tuple(_TYPES.get(k, "double") for k in kinds) if kinds else None
    return Signature(names, int(booster.num_features()), types, outputs)
