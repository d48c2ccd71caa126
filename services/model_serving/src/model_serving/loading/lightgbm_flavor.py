"""LightGBM native text models (`Booster.save_model`), loaded with `lightgbm.Booster(model_file=...)`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np

from model_serving.loading.base import Classes, MatrixModel, regression_prediction
from model_serving.loading.errors import ModelLoadError
from model_serving.loading.inputs import Matrix
from model_serving.loading.signature import Prediction, Signature

_BINARY = frozenset({"binary", "cross_entropy", "xentropy"})
_MULTICLASS = frozenset({"multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"})
# names LightGBM makes up for unnamed columns: not worth showing as a signature
_GENERATED_NAME = re.compile(r"Column_\d+")


class LightGBMModel(MatrixModel):
    input_errors = (ValueError, TypeError, lightgbm.basic.LightGBMError)

    def __init__(self, booster: Any, header: dict[str, str]) -> None:
        self._booster = booster
        self._classes = _classes(header.get("objective", "regression"), int(header.get("num_class", "1")))
        outputs = ("prediction", "probability") if self._classes is not None else ("prediction",)
        super().__init__("lightgbm", _signature(booster, outputs))

    def _predict_matrix(self, matrix: Matrix) -> Prediction:
        # one thread per call: requests run side by side, and OpenMP start-up dominates a single row
        raw = np.asarray(self._booster.predict(matrix, num_threads=1))
        if self._classes is None:
            return regression_prediction(raw)
        if raw.ndim == 1:  # LGBMClassifier.predict_proba's arithmetic for a binary objective
            raw = np.vstack((1.0 - raw, raw)).transpose()
        return self._classes.prediction(raw)


def load_lightgbm(file: Path) -> LightGBMModel:
    try:
        booster = lightgbm.Booster(model_file=str(file))
    except Exception as exc:
        raise ModelLoadError.unreadable(file.name, "LightGBM model", exc) from exc
    return LightGBMModel(booster, _header(file))


def _header(file: Path) -> dict[str, str]:
    """`key=value` lines before the first tree; the objective's name is its first word."""
    header: dict[str, str] = {}
    with file.open("rb") as handle:
        for raw_line in handle:
            line = raw_line.decode("utf-8", "replace").strip()
            if line.startswith("Tree="):
                break
            key, _, value = line.partition("=")
            header[key] = value.split(" ", 1)[0]
    return header


def _classes(objective: str, n_classes: int) -> Classes | None:
    if objective in _BINARY:
        return Classes([0, 1])
    if objective in _MULTICLASS:
        return Classes(list(range(n_classes)))
    return None


def _signature(booster: Any, outputs: tuple[str, ...]) -> Signature:
    names = tuple(booster.feature_name())
    generated = all(_GENERATED_NAME.fullmatch(n) for n in names)
    return Signature(None if generated else names, int(booster.num_feature()), None, outputs)
