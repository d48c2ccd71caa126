"""The part every flavor shares: rows -> matrix -> the library's prediction, and the warm-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from model_serving.loading.errors import InputMismatch, ModelLoadError
from model_serving.loading.inputs import InputShaper, Matrix
from model_serving.loading.signature import Prediction, Signature


class MatrixModel:
    """A model called with one numeric matrix per request; subclasses implement `_predict_matrix`."""

    flavor: str
    # what the library raises for input it refuses (NaN where not allowed, ...): reported as a 422
    input_errors: ClassVar[tuple[type[Exception], ...]] = (ValueError, TypeError)

    def __init__(self, flavor: str, signature: Signature) -> None:
        self.flavor = flavor
        self.signature = signature
        self._shaper = InputShaper(signature)

    def predict(self, columns: list[str] | None, rows: list[list[Any]]) -> Prediction:
        matrix = self._shaper.matrix(columns, rows)
        try:
            return self._predict_matrix(matrix)
        except self.input_errors as exc:
            message = f"the model rejected the input: {exc}"
            raise InputMismatch(message, self.signature.expected(), found={"error": str(exc)}) from exc

    def warm(self) -> None:
        """One prediction on a zero row, so the first real request does not pay for lazy set-up."""
        n_features = self.signature.n_features
        if n_features is None:
            return
        try:
            self._predict_matrix(np.zeros((1, n_features)))
        except Exception as exc:
            raise ModelLoadError(f"the {self.flavor} model fails on a warm-up row of zeros: {exc}") from exc

    def _predict_matrix(self, matrix: Matrix) -> Prediction:
        raise NotImplementedError


class Classes:
    """A classifier's labels, held both as an array (to index) and as JSON-able Python values."""

    def __init__(self, labels: Sequence[Any] | np.ndarray) -> None:
        self.array = np.asarray(labels)
        self.values: list[Any] = self.array.tolist()

    def prediction(self, proba: np.ndarray) -> Prediction:
        """Arg-max labels with their probabilities, as the libraries' classifier wrappers compute them."""
        labels = self.array.take(np.argmax(proba, axis=1), axis=0)
        return Prediction(labels.tolist(), proba.tolist(), list(self.values))


def regression_prediction(values: np.ndarray) -> Prediction:
    return Prediction(np.asarray(values).tolist(), None, None)
