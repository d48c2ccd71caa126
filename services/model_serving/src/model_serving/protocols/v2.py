"""The Open Inference Protocol v2 over REST (KServe, MLServer, Triton): `POST /v2/models/{name}/infer`
and model metadata, as specified in kserve/open-inference-protocol `specification/protocol/inference_rest.md`.

A tabular model takes either one input tensor of shape [n, k] (positional rows) or one input per column,
each of shape [n] or [n, 1] (named columns; MLServer's `"content_type": "pd"` asks for this layout).
Tensor data may be flat (row-major) or nested; the shape must match the element count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from model_serving.protocols.common import (
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_STRING,
    Inputs,
    ProtocolError,
    check_names,
    check_params,
    check_request_id,
    error,
    expect_object,
    json_type,
    loads,
    make_inputs,
)

_EXAMPLE = (
    '{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [[6.8, 2.8, 4.8, 1.4]]}]}'
)
OUTPUT_PREDICT = "predict"
OUTPUT_PROBA = "predict_proba"
OUTPUTS = (OUTPUT_PREDICT, OUTPUT_PROBA)


def _int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


INT_RANGES = {
    **{f"INT{bits}": _int_range(bits, True) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": _int_range(bits, False) for bits in (8, 16, 32, 64)},
}
FLOAT_MAX = {
    "FP16": 65504.0,
    "FP32": float(np.finfo(np.float32).max),
    "FP64": float(np.finfo(np.float64).max),
}
DATATYPES = ("BOOL", *INT_RANGES, *FLOAT_MAX, "BYTES")

Checker = Callable[[list[Any], str, "int | None"], None]  # values, json path, row index


def decode_v2_infer(body: bytes) -> Inputs:
    """`{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data", "parameters"?}],
    "outputs"?}` into positional rows (one [n, k] tensor) or named columns (one [n] tensor per column)."""
    doc = expect_object(loads(body), _EXAMPLE)
    request_id = None if doc.get("id") is None else check_request_id(doc["id"], "$.id")
    params = check_params(doc.get("parameters"), "$.parameters")
    tensors = doc.get("inputs")
    if type(tensors) is not list or not tensors:
        raise error(f"Expected 'inputs' to be a non-empty array of input tensors: {_EXAMPLE}", "$.inputs")
    if len(tensors) > MAX_COLUMNS:
        raise error(f"{len(tensors)} input tensors is more than the limit of {MAX_COLUMNS}", "$.inputs")
    headers = [_tensor_header(tensor, i) for i, tensor in enumerate(tensors)]
    if len(tensors) == 1 and len(headers[0][1]) == 2 and params.get("content_type") != "pd":
        columns, rows = None, _positional_rows(tensors[0], headers[0])
    else:
        columns, rows = _named_rows(tensors, headers)
    inputs = make_inputs(columns, rows, request_id=request_id, params=params)
    inputs.outputs = _requested_outputs(doc.get("outputs"))
    return inputs


Header = tuple[str, list[int], str]  # name, shape, datatype


def _tensor_header(tensor: Any, i: int) -> Header:
    where = f"$.inputs[{i}]"
    if type(tensor) is not dict:
        raise error(
            f"Expected an input tensor object {{name, shape, datatype, data}}, got {json_type(tensor)}", where
        )
    missing = [key for key in ("name", "shape", "datatype", "data") if key not in tensor]
    if missing:
        raise error(
            f"Input tensor lacks {', '.join(missing)}; expected {{name, shape, datatype, data}}", where
        )
    name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
    if type(name) is not str or not name or len(name) > MAX_STRING:
        raise error("Expected the tensor's name (a non-empty string)", f"{where}.name")
    if datatype not in DATATYPES:
        raise error(
            f"Unknown datatype {datatype!r}; expected one of {', '.join(DATATYPES)}", f"{where}.datatype"
        )
    if type(shape) is not list or not 1 <= len(shape) <= 2 or any(type(d) is not int or d < 0 for d in shape):
        raise error(
            f"Expected a shape of [n] or [n, k] (non-negative integers) for a tabular model, got {shape!r}"[
                :300
            ],
            f"{where}.shape",
        )
    if shape[0] == 0 or shape[0] > MAX_ROWS:
        raise error(
            f"Expected between 1 and {MAX_ROWS} rows, the shape says {shape[0]}",
            f"{where}.shape",
            rows=shape[0],
        )
    if len(shape) == 2 and not 1 <= shape[1] <= MAX_COLUMNS:
        raise error(
            f"Expected between 1 and {MAX_COLUMNS} columns, the shape says {shape[1]}", f"{where}.shape"
        )
    if type(tensor.get("parameters", {})) is not dict:
        raise error("Expected the tensor's parameters to be an object", f"{where}.parameters")
    return name, shape, datatype


def _positional_rows(tensor: dict[str, Any], header: Header) -> list[list[Any]]:
    _, (n, k), datatype = header
    data, where = tensor["data"], "$.inputs[0].data"
    check = _CHECKERS[datatype]
    if not _is_nested(data):
        _check_count(data, n * k, [n, k], where)
        check(data, where, None)
        return [data[i * k : (i + 1) * k] for i in range(n)]
    rows = _nested_rows(data, n, k, where)
    for i, row in enumerate(rows):
        check(row, where, i)
    return rows


def _is_nested(data: Any) -> bool:
    return type(data) is list and bool(data) and type(data[0]) is list


def _nested_rows(data: list[Any], n: int, k: int, where: str) -> list[list[Any]]:
    if len(data) != n or any(type(row) is not list or len(row) != k for row in data):
        raise error(f"Tensor data does not match shape [{n}, {k}]: expected {n} rows of {k} values", where)
    return data


def _check_count(data: Any, count: int, shape: list[int], where: str) -> None:
    if type(data) is not list:
        raise error(f"Expected tensor data to be an array, got {json_type(data)}", where)
    if len(data) != count:
        raise error(
            f"Tensor data has {len(data)} elements but shape {shape} needs {count}", where, shape=shape
        )


def _named_rows(tensors: list[dict[str, Any]], headers: list[Header]) -> tuple[list[str], list[list[Any]]]:
    names = check_names([name for name, _, _ in headers], "$.inputs[*].name")
    n = headers[0][1][0]
    columns = []
    for i, (tensor, (name, shape, datatype)) in enumerate(zip(tensors, headers, strict=True)):
        where = f"$.inputs[{i}]"
        if shape[0] != n or shape[1:] not in ([], [1]):
            raise error(
                f"With several inputs each is one column of shape [{n}] or [{n}, 1]; "
                f"{name!r} has shape {shape}",
                f"{where}.shape",
            )
        column = _column_data(tensor["data"], shape, f"{where}.data")
        _CHECKERS[datatype](column, f"{where}.data", None)
        columns.append(column)
    return names, [list(row) for row in zip(*columns, strict=True)]


def _column_data(data: Any, shape: list[int], where: str) -> list[Any]:
    if _is_nested(data):  # [[v], [v], ...] for shape [n, 1]
        return [v for row in _nested_rows(data, shape[0], 1, where) for v in row]
    _check_count(data, shape[0], shape, where)
    flat: list[Any] = data
    return flat


def _requested_outputs(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if type(outputs) is not list:
        raise error(
            f"Expected 'outputs' to be an array of {{\"name\": ...}}, got {json_type(outputs)}", "$.outputs"
        )
    names = []
    for i, output in enumerate(outputs):
        if type(output) is not dict or output.get("name") not in OUTPUTS:
            raise error(f"Unknown output; this model's outputs are {', '.join(OUTPUTS)}", f"$.outputs[{i}]")
        names.append(output["name"])
    return names


def _bad(where: str, row: int | None, j: int, datatype: str, expected: str, value: Any) -> ProtocolError:
    path = f"{where}[{j}]" if row is None else f"{where}[{row}][{j}]"
    return error(f"Expected {datatype} data ({expected}), got {json_type(value)} {repr(value)[:60]}", path)


def _check_bool(values: list[Any], where: str, row: int | None) -> None:
    for j, v in enumerate(values):
        if type(v) is not bool:
            raise _bad(where, row, j, "BOOL", "true or false", v)


def _int_checker(datatype: str) -> Checker:
    low, high = INT_RANGES[datatype]

    def check(values: list[Any], where: str, row: int | None) -> None:
        for j, v in enumerate(values):
            if type(v) is not int or not low <= v <= high:
                raise _bad(where, row, j, datatype, f"an integer in [{low}, {high}]", v)

    return check


def _float_checker(datatype: str) -> Checker:
    limit = FLOAT_MAX[datatype]

    def check(values: list[Any], where: str, row: int | None) -> None:
        for j, v in enumerate(values):
            t = type(v)
            if not ((t is float or t is int) and -limit <= v <= limit):  # NaN fails the comparison too
                raise _bad(where, row, j, datatype, f"a finite number within ±{limit:g}", v)

    return check


def _check_bytes(values: list[Any], where: str, row: int | None) -> None:
    for j, v in enumerate(values):
        if type(v) is not str or len(v) > MAX_STRING:
            raise _bad(where, row, j, "BYTES", f"a string of at most {MAX_STRING} characters", v)


_CHECKERS: dict[str, Checker] = {
    "BOOL": _check_bool,
    "BYTES": _check_bytes,
    **{datatype: _int_checker(datatype) for datatype in INT_RANGES},
    **{datatype: _float_checker(datatype) for datatype in FLOAT_MAX},
}


def v2_datatype(values: np.ndarray | Sequence[Any]) -> str:
    """The OIP datatype of model output, from its numpy dtype (strings and objects are BYTES)."""
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{size * 8}"
    if kind == "f" and size in (2, 4, 8):
        return f"FP{size * 8}"
    return "BYTES"


def encode_v2_infer(
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    prediction: np.ndarray | Sequence[Any],
    probabilities: np.ndarray | Sequence[Sequence[float]] | None,
    *,
    outputs: Sequence[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> bytes:
    """`{"model_name", "model_version", "id", "parameters"?, "outputs": [predict, predict_proba?]}`:
    `predict` of shape [n] (its datatype from the values), `predict_proba` [n, k] FP64, flat row-major.
    `outputs` (the request's) keeps only those asked for; `id` and `model_version` are left out when None."""
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    tensors = [_predict_tensor(prediction)]
    if probabilities is not None:
        tensors.append(_proba_tensor(probabilities))
    doc["outputs"] = [t for t in tensors if outputs is None or t["name"] in outputs]
    return orjson.dumps(doc)


def _predict_tensor(prediction: np.ndarray | Sequence[Any]) -> dict[str, Any]:
    array = prediction if isinstance(prediction, np.ndarray) else np.asarray(prediction)
    datatype = v2_datatype(array)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return {"name": OUTPUT_PREDICT, "shape": list(array.shape), "datatype": datatype, "data": data}


def _proba_tensor(probabilities: np.ndarray | Sequence[Sequence[float]]) -> dict[str, Any]:
    array = np.asarray(probabilities, dtype=np.float64)
    return {
        "name": OUTPUT_PROBA,
        "shape": list(array.shape),
        "datatype": "FP64",
        "data": array.ravel().tolist(),
    }


def v2_model_metadata(
    name: str,
    versions: Sequence[str] | None,
    platform: str,
    inputs: Sequence[tuple[str, str, Sequence[int]]],
    outputs: Sequence[tuple[str, str, Sequence[int]]],
) -> dict[str, Any]:
    """`$metadata_model_response`: tensors as (name, datatype, shape), -1 for a variable dimension."""
    doc: dict[str, Any] = {"name": name}
    if versions is not None:
        doc["versions"] = list(versions)
    doc["platform"] = platform
    doc["inputs"] = [_metadata_tensor(*tensor) for tensor in inputs]
    doc["outputs"] = [_metadata_tensor(*tensor) for tensor in outputs]
    return doc


def _metadata_tensor(name: str, datatype: str, shape: Sequence[int]) -> dict[str, Any]:
    if datatype not in DATATYPES:
        raise ValueError(f"unknown OIP datatype {datatype!r}")
    return {"name": name, "datatype": datatype, "shape": list(shape)}
