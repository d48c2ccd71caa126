"""Request rows -> one float64 matrix in the model's column order, or an InputMismatch saying why not.

The hot path is one `np.array(rows)` call; the per-value scan runs only when that call does not
give a clean numeric matrix (ragged rows, None, strings), to find what to report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model_serving.loading.errors import InputMismatch
from model_serving.loading.signature import NUMERIC_TYPES, Signature

Matrix = NDArray[np.float64]
_NUMERIC_KINDS = frozenset("fiub")


class InputShaper:
    """Checks rows against one signature and builds the matrix the model is called with."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self._names = signature.names
        self._position = {name: i for i, name in enumerate(signature.names or ())}

    def matrix(self, columns: Sequence[str] | None, rows: Sequence[Any]) -> Matrix:
        if not isinstance(rows, list | tuple) or not rows:
            raise self._mismatch("no rows to predict: send at least one row of feature values")
        n_features = self.signature.n_features
        if columns is None or self._names is None:
            # a model without column names takes named rows positionally, as MLflow does
            if columns is not None and n_features is not None and len(columns) != n_features:
                raise self._count_mismatch(n_features, len(columns), "columns")
            return self._array(rows, n_features if columns is None else len(columns), self._names)
        order = self._order(columns)
        array = self._array(rows, len(columns), columns)
        return array if order is None else array[:, order]

    def _order(self, columns: Sequence[str]) -> list[int] | None:
        """Positions of the model's columns among the request's; None when already in model order."""
        names = self._names or ()
        if tuple(columns) == names:
            return None
        given = {name: i for i, name in enumerate(columns)}
        if len(given) != len(columns):
            twice = sorted(name for name, count in Counter(columns).items() if count > 1)
            raise self._mismatch(f"columns appear more than once: {twice}", duplicated=twice)
        missing = [name for name in names if name not in given]
        unknown = [name for name in columns if name not in self._position]
        if missing or unknown:
            message = f"the columns do not match the model's: missing {missing}, unknown {unknown}"
            raise self._mismatch(message, missing=missing, unknown=unknown)
        return [given[name] for name in names]

    def _array(self, rows: Sequence[Any], width: int | None, labels: Sequence[str] | None) -> Matrix:
        try:
            array = np.array(rows)
        except (ValueError, TypeError):  # ragged rows
            array = None
        if array is None or array.ndim != 2 or array.dtype.kind not in _NUMERIC_KINDS:
            array = self._scan(rows, width, labels)
        if width is not None and array.shape[1] != width:
            raise self._count_mismatch(width, array.shape[1], "values in each row")
        return array.astype(np.float64, copy=False)

    def _scan(self, rows: Sequence[Any], width: int | None, labels: Sequence[str] | None) -> Matrix:
        """The slow path: converts None to NaN, or finds the first row/value that is not a number."""
        width = width if width is not None else _first_width(rows)
        values: list[list[float]] = []
        for r, row in enumerate(rows):
            if not isinstance(row, list | tuple):
                raise self._mismatch(f"row {r} is not a list of values", row=r)
            if len(row) != width:
                message = f"row {r} has {len(row)} values, expected {width}"
                raise self._mismatch(message, row=r, values=len(row))
            values.append([self._number(v, r, c, labels) for c, v in enumerate(row)])
        return np.array(values, dtype=np.float64).reshape(len(values), width)

    def _number(self, value: Any, row: int, col: int, labels: Sequence[str] | None) -> float:
        if value is None:
            return math.nan
        column = labels[col] if labels is not None else col
        if isinstance(value, int | float | np.integer | np.floating):
            try:
                return float(value)
            except OverflowError:
                too_large = f"row {row}, column {column!r}: {_short(value)} is too large"
                raise self._mismatch(too_large, row=row, column=column) from None
        message = f"row {row}, column {column!r}: expected a number, got {_short(value)}"
        declared = self._declared_type(column)
        if declared is not None and declared not in NUMERIC_TYPES:
            message += f" (the model declares it {declared!r}; only numeric columns can be served)"
        raise self._mismatch(message, row=row, column=column)

    def _declared_type(self, column: str | int) -> str | None:
        types = self.signature.types
        if types is None:
            return None
        index = column if isinstance(column, int) else self._position.get(column)
        return types[index] if index is not None and index < len(types) else None

    def _count_mismatch(self, expected: int, got: int, what: str) -> InputMismatch:
        named = self._names is not None and len(self._names) == expected
        names = f" ({', '.join(self._names or ())})" if named else ""
        return self._mismatch(f"expected {expected} {what}{names}, got {got}", values=got)

    def _mismatch(self, message: str, **found: Any) -> InputMismatch:
        return InputMismatch(message, self.signature.expected(), found=found)


def _first_width(rows: Sequence[Any]) -> int:
    first = rows[0]
    return len(first) if isinstance(first, list | tuple) else 1


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
