"""Column typing and conversion shared by reference profiles and current windows.

A column is a numpy array or a list. NaN and None are missing; types are numeric, categorical or
boolean (booleans are categorical with the categories "false" and "true").
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Kind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical", "boolean")


class ColumnTypeError(ValueError):
    """A value that does not fit its column's type; names the column and the row."""

    def __init__(self, column: str, row: int, value: object, kind: str) -> None:
        super().__init__(f"column {column!r} row {row}: {value!r} is not {kind}")
        self.column = column
        self.row = row
        self.kind = kind


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool | np.bool_)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not _is_bool(value)


def as_array(values: ArrayLike) -> NDArray[Any]:
    """A 1-d array; a list of mixed values stays per-value (numpy would make them all strings)."""
    arr = np.asarray(values)
    if not isinstance(values, np.ndarray) and arr.dtype.kind in "US":
        arr = np.array(list(values), dtype=object)  # type: ignore[arg-type]
    return arr.reshape(-1) if arr.ndim != 1 else arr


def infer_kind(values: ArrayLike) -> Kind:
    """Numeric dtypes -> numeric, bool -> boolean; object columns by their non-missing values."""
    arr = as_array(values)
    if arr.dtype == np.bool_:
        return "boolean"
    if arr.dtype.kind in "iuf":
        return "numeric"
    present = [v for v in arr.tolist() if not _is_missing(v)]
    if present and all(_is_bool(v) for v in present):
        return "boolean"
    if present and all(_is_number(v) for v in present):
        return "numeric"
    return "categorical"


def to_numeric(column: str, values: ArrayLike) -> NDArray[np.float64]:
    """Floats with NaN for missing; a non-number raises ColumnTypeError naming the row.

    Infinities are treated as missing (they have no place in moments or distances).
    """
    arr = as_array(values)
    if arr.dtype.kind in "iuf":
        out = arr.astype(np.float64)
    else:
        out = np.empty(arr.size, dtype=np.float64)
        for row, value in enumerate(arr.tolist()):
            if _is_missing(value):
                out[row] = np.nan
            elif _is_number(value):
                out[row] = float(value)
            else:
                raise ColumnTypeError(column, row, value, "numeric")
    out[np.isinf(out)] = np.nan
    return out


def _label(column: str, row: int, value: object, kind: Kind) -> str:
    if kind == "boolean":
        if _is_bool(value) or (_is_number(value) and value in (0, 1)):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        raise ColumnTypeError(column, row, value, "boolean")
    if _is_bool(value):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def label_counts(column: str, values: ArrayLike, kind: Kind) -> tuple[Counter[str], int]:
    """Category counts (values as strings) and the number of missing values.

    Values are counted first and labelled per distinct value (fast on large windows); a bad value
    is reported at its first row.
    """
    arr = as_array(values)
    raw = Counter(arr.tolist())
    counts: Counter[str] = Counter()
    missing = 0
    for value, n in raw.items():
        if _is_missing(value):
            missing += n
            continue
        try:
            counts[_label(column, 0, value, kind)] += n
        except ColumnTypeError:
            row = next(i for i, v in enumerate(arr.tolist()) if v is value or v == value)
            raise ColumnTypeError(column, row, value, kind) from None
    return counts, missing
