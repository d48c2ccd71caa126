"""MLflow's scoring protocol (`POST /invocations`) as `mlflow models serve` speaks it (MLflow 2.x/3.x,
`mlflow/pyfunc/scoring_server`): JSON with exactly one of `dataframe_split`, `dataframe_records`,
`instances`, `inputs` and optional `params`, or a `text/csv` body; answered `{"predictions": [...]}`.
Messages follow MLflow's wording so its users recognise them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from model_serving.protocols.common import (
    INT64_MAX,
    INT64_MIN,
    MAX_ROWS,
    MAX_STRING,
    Inputs,
    ProtocolError,
    UnsupportedContentType,
    check_names,
    check_params,
    check_row_count,
    check_values,
    check_width,
    error,
    json_type,
    loads,
    make_inputs,
    rows_from_columns,
    rows_from_lists,
    rows_from_records,
)
from model_serving.protocols.predict import to_list

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
SUPPORTED_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)


def decode_invocations(body: bytes, content_type: str | None) -> Inputs:
    """An MLflow scoring request; `content_type` is the request's Content-Type header."""
    mime = _mime_type(content_type)
    if mime == CONTENT_TYPE_CSV:
        return decode_csv(body)
    if mime == CONTENT_TYPE_JSON:
        return _decode_json(body)
    raise UnsupportedContentType(
        f"This predictor only supports the following content types: "
        f"['{CONTENT_TYPE_CSV}', '{CONTENT_TYPE_JSON}']. Got '{content_type or ''}'.",
        {"content_type": content_type or ""},
    )


def _mime_type(content_type: str | None) -> str:
    mime, *parameters = (part.strip() for part in (content_type or "").split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            raise UnsupportedContentType(
                f"Unrecognized content type parameters: {key.strip()}.", {"content_type": content_type}
            )
        if value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedContentType(
                "The scoring server only supports UTF-8", {"content_type": content_type}
            )
    return mime.lower()


def _decode_json(body: bytes) -> Inputs:
    doc = loads(body, nan_as_null=True)  # MLflow's client writes a DataFrame's missing values as NaN
    if type(doc) is list:
        raise error(f"{REQUIRED_INPUT_FORMAT}. Received a list.", "$")
    if type(doc) is not dict:
        raise error(f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{json_type(doc)}'.", "$")
    formats = [key for key in SUPPORTED_FORMATS if key in doc]
    if len(formats) != 1:
        raise error(f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {list(doc)[:20]}.", "$")
    name = formats[0]
    params = check_params(doc.get("params"), "$.params")
    columns, rows = _FORMAT_DECODERS[name](doc[name], f"$.{name}")
    return make_inputs(columns, rows, params=params)


Table = tuple[list[str] | None, list[list[Any]]]


def _split(value: Any, where: str) -> Table:
    if type(value) is not dict:
        raise error(f"Dataframe split format must be a dictionary. Got {_python_type(value)}.", where)
    extra = value.keys() - {"columns", "data", "index"}
    if "data" not in value or extra:
        raise error(
            "Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. "
            f"Got {sorted(value)[:20]}.",
            where,
        )
    data = value["data"]
    if type(data) is not list:
        raise error(f"Dataframe split 'data' must be a list of rows. Got {json_type(data)}.", f"{where}.data")
    check_row_count(len(data), f"{where}.data")
    if data and type(data[0]) is not list:  # pandas reads a flat list as one column
        data = [[v] for v in data]
    rows = rows_from_lists(data, f"{where}.data")
    columns = _split_columns(value.get("columns"), len(rows[0]), where)
    _check_index(value.get("index"), len(rows), where)
    return columns, rows


def _split_columns(columns: Any, width: int, where: str) -> list[str] | None:
    if columns is None:
        return None
    if type(columns) is not list:
        raise error(
            f"Dataframe split 'columns' must be a list of names. Got {json_type(columns)}.",
            f"{where}.columns",
        )
    if len(columns) != width:
        raise error(
            f"Shape of passed values is ({width} columns), columns imply {len(columns)}: "
            "each row of 'data' needs one value per column.",
            f"{where}.columns",
        )
    if columns and type(columns[0]) is int and columns == list(range(width)):  # from a numpy array
        return None
    return check_names(columns, f"{where}.columns")


def _check_index(index: Any, n: int, where: str) -> None:
    if index is None:
        return
    if type(index) is not list or len(index) != n:
        got = len(index) if type(index) is list else json_type(index)
        raise error(
            f"Dataframe split 'index' must be a list of {n} labels (one per row). Got {got}.",
            f"{where}.index",
        )


def _records(value: Any, where: str) -> Table:
    if type(value) is not list:
        raise error(f"Dataframe records format must be a list of records. Got {_python_type(value)}.", where)
    return _tensor_rows(value, where)


def _python_type(value: Any) -> str:
    """How MLflow's messages name a JSON value's type."""
    if type(value) is list:
        return "list"
    return "dictionary" if type(value) is dict else f"type {json_type(value)}"


def _instances(value: Any, where: str) -> Table:
    if type(value) is dict:  # MLflow takes a dict under "instances" as named columns, like "inputs"
        columns, rows, _ = rows_from_columns(value, where)
        return columns, rows
    if type(value) is not list:
        raise error(
            f"'{where[2:]}' must be a list of rows or a dictionary of columns. Got {json_type(value)}.", where
        )
    return _tensor_rows(value, where)


def _tensor_rows(value: list[Any], where: str) -> Table:
    """Rows of a list: records (objects), positional rows (arrays) or one column (scalars, one per row)."""
    check_row_count(len(value), where)
    first = value[0]
    if type(first) is dict:
        return rows_from_records(value, where)
    if type(first) is list:
        return None, rows_from_lists(value, where)
    check_values(value, where)
    return None, [[v] for v in value]


_FORMAT_DECODERS = {
    "dataframe_split": _split,
    "dataframe_records": _records,
    "instances": _instances,
    "inputs": _instances,
}

# pandas.read_csv's default NA tokens
_NA = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"}
    | {"NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
_INT = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|infinity)", re.ASCII | re.IGNORECASE
)
_TRUE = frozenset({"True", "TRUE", "true"})
_FALSE = frozenset({"False", "FALSE", "false"})


def decode_csv(body: bytes) -> Inputs:
    """A CSV table as pandas.read_csv reads it: the header row names the columns, each column's type is
    inferred over the whole column (ints, floats, booleans, else strings), pandas' NA tokens are None."""
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"Ensure that input is a valid UTF-8 encoded string. Error: '{exc!r}'", {"path": "line 1"}
        ) from None
    header, records, lines = _csv_records(text)
    columns = check_names([name or f"Unnamed: {j}" for j, name in enumerate(header)], "line 1")
    typed = [
        _csv_column(list(cells), name, lines)
        for name, cells in zip(columns, zip(*records, strict=True), strict=True)
    ]
    return make_inputs(columns, [list(row) for row in zip(*typed, strict=True)])


def _csv_records(text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the data records padded to its width, and the line each record ends on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise ProtocolError(
                "Failed to parse input as a Pandas DataFrame: no header row with column names.",
                {"path": "line 1"},
            )
        check_width(len(header), "line 1")
        width = len(header)
        records, lines = [], []
        for record in reader:
            if not record:  # pandas skips blank lines
                continue
            if len(record) > width:
                raise _csv_error(
                    f"Expected {width} fields in line {reader.line_num}, saw {len(record)}", reader.line_num
                )
            records.append(record + [""] * (width - len(record)))
            lines.append(reader.line_num)
            if len(records) > MAX_ROWS:
                raise _csv_error(f"More than the limit of {MAX_ROWS} rows per request", reader.line_num)
    except csv.Error as exc:
        raise _csv_error(str(exc), reader.line_num) from None
    check_row_count(len(records), "line 2")
    return header, records, lines


def _csv_error(reason: str, line: int) -> ProtocolError:
    return ProtocolError(
        f"Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas "
        f"DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '{reason}'",
        {"path": f"line {line}", "line": line},
    )


def _csv_column(cells: list[str], name: str, lines: list[int]) -> list[Any]:
    """One column's values, typed as pandas infers them from the whole column."""
    trimmed = [None if cell in _NA else cell.strip(" \t") for cell in cells]
    present = [cell for cell in trimmed if cell is not None]
    values: list[Any]
    if all(_INT.fullmatch(cell) for cell in present):
        values = [None if cell is None else int(cell) for cell in trimmed]
        _check_cells(values, name, lines)
        if len(present) < len(cells):
            values = [None if v is None else float(v) for v in values]  # pandas: ints with NA become floats
    elif all(_FLOAT.fullmatch(cell) for cell in present):
        values = [None if cell is None else float(cell) for cell in trimmed]
    elif all(cell in _TRUE or cell in _FALSE for cell in present):
        values = [None if cell is None else cell in _TRUE for cell in trimmed]
    else:
        values = [None if cell in _NA else cell for cell in cells]
    _check_cells(values, name, lines)
    return values


def _check_cells(values: list[Any], name: str, lines: list[int]) -> None:
    for i, v in enumerate(values):
        t = type(v)
        if t is float and v - v != 0.0:
            what = "Expected a finite number"
        elif t is str and len(v) > MAX_STRING:
            what = f"Expected a string of at most {MAX_STRING} characters"
        elif t is int and not INT64_MIN <= v <= INT64_MAX:
            what = "An integer that does not fit in 64 bits"
        else:
            continue
        raise ProtocolError(
            f"{what} in column {name!r}, data row {i} (line {lines[i]})",
            {"path": f"line {lines[i]}", "line": lines[i], "column": name, "row": i},
        )


def encode_invocations(
    predictions: np.ndarray | Sequence[Any],
    probabilities: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> bytes:
    """MLflow's answer `{"predictions": [...]}` (a classifier's pyfunc predicts labels). Probabilities are
    left out unless given; then they ride beside as `"probabilities"` (MLflow clients read `predictions`).
    """
    doc: dict[str, Any] = {"predictions": to_list(predictions)}
    if probabilities is not None:
        doc["probabilities"] = to_list(probabilities)
    return orjson.dumps(doc)
