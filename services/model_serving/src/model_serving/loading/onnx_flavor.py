"""ONNX models on onnxruntime's CPU provider.

Two input layouts: one tensor holding every feature (`[batch, n]`, what skl2onnx writes), or one
`[batch, 1]` tensor per column (the column names are the input names). The first output is the
prediction; a second output that is a `seq(map)` (skl2onnx's ZipMap) or a 2-D float tensor is
the class probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from model_serving.loading.base import MatrixModel
from model_serving.loading.errors import InputMismatch, ModelLoadError
from model_serving.loading.inputs import Matrix
from model_serving.loading.signature import Prediction, Signature

# ONNX tensor element type -> (numpy dtype, MLflow colspec type)
_DTYPES: dict[str, tuple[type[np.generic], str]] = {
    "tensor(float)": (np.float32, "float"),
    "tensor(double)": (np.float64, "double"),
    "tensor(int64)": (np.int64, "long"),
    "tensor(int32)": (np.int32, "integer"),
    "tensor(bool)": (np.bool_, "boolean"),
}


@dataclass(frozen=True)
class _Input:
    name: str
    dtype: type[np.generic]
    shape: tuple[int, ...] | None  # the non-batch dimensions, when all are fixed


class OnnxModel(MatrixModel):
    input_errors = (ValueError, TypeError, InvalidArgument)

    def __init__(self, session: Any) -> None:
        self._session = session
        self._inputs = [_input(node) for node in session.get_inputs()]
        outputs = session.get_outputs()
        self._output_names = [node.name for node in outputs]
        self._proba_output = _proba_output(outputs)
        self._wanted = self._output_names[:2] if self._proba_output else self._output_names[:1]
        self._per_column = len(self._inputs) > 1
        if self._per_column and any(i.shape not in ((), (1,)) for i in self._inputs):
            message = "an ONNX model with several inputs is served only as one [batch, 1] input per column"
            raise ModelLoadError(message)
        super().__init__("onnx", self._signature(session))

    def _predict_matrix(self, matrix: Matrix) -> Prediction:
        feeds = self._feeds(matrix)
        results = self._session.run(self._wanted, feeds)
        predictions = np.asarray(results[0])
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if not self._proba_output:
            return Prediction(predictions.tolist(), None, None)
        proba, classes = _probabilities(results[1])
        return Prediction(predictions.tolist(), proba, classes)

    def _feeds(self, matrix: Matrix) -> dict[str, np.ndarray]:
        if not self._per_column:
            only = self._inputs[0]
            shape = (matrix.shape[0], *(only.shape or (matrix.shape[1],)))
            return {only.name: self._cast(matrix, only).reshape(shape)}
        feeds = {}
        for index, node in enumerate(self._inputs):
            column = self._cast(matrix[:, index], node)
            feeds[node.name] = column if node.shape == () else column.reshape(-1, 1)
        return feeds

    def _cast(self, values: Matrix, node: _Input) -> np.ndarray:
        if np.issubdtype(node.dtype, np.integer) and not np.array_equal(values, np.round(values)):
            message = f"input {node.name!r} takes integers; got a fraction, NaN or infinity"
            raise InputMismatch(message, self.signature.expected(), found={"input": node.name})
        return np.ascontiguousarray(values, dtype=node.dtype)

    def _signature(self, session: Any) -> Signature:
        types_by_input = [_DTYPES[node.type][1] for node in session.get_inputs()]
        if self._per_column:
            names = tuple(i.name for i in self._inputs)
            return Signature(names, len(names), tuple(types_by_input), tuple(self._output_names))
        shape = self._inputs[0].shape
        n_features = math.prod(shape) if shape is not None else None
        types = (types_by_input[0],) * n_features if n_features is not None else None
        return Signature(None, n_features, types, tuple(self._output_names))


def load_onnx(file: Path) -> OnnxModel:
    options = onnxruntime.SessionOptions()
    # one thread per call: requests run side by side, and a thread pool per row costs more than it saves
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError.unreadable(file.name, "ONNX model", exc) from exc
    return OnnxModel(session)


def _input(node: Any) -> _Input:
    if node.type not in _DTYPES:
        supported = ", ".join(_DTYPES)
        raise ModelLoadError(f"ONNX input {node.name!r} is a {node.type}; served input types are {supported}")
    dims = tuple(node.shape[1:])
    fixed = all(isinstance(d, int) and d > 0 for d in dims)
    return _Input(node.name, _DTYPES[node.type][0], dims if fixed else None)


def _proba_output(outputs: list[Any]) -> bool:
    if len(outputs) < 2:
        return False
    second = outputs[1]
    return str(second.type).startswith("seq(map(") or (
        second.type in ("tensor(float)", "tensor(double)") and len(second.shape) == 2
    )


def _probabilities(output: Any) -> tuple[list[list[float]], list[Any] | None]:
    """Per-row class probabilities, from ZipMap's list of {class: probability} or a 2-D tensor."""
    if isinstance(output, list):
        classes = list(output[0].keys()) if output else []
        return [[float(row[c]) for c in classes] for row in output], classes
    return np.asarray(output, dtype=np.float64).tolist(), None
