"""A batch of logged predictions off the wire, validated column by column instead of per row.

The rules are `schemas.PredictionIn`'s (request ids 1-128 characters, versions 1-64, at most
1,000 features per row with names of 1-256 characters, values that are numbers, strings of at
most 1,024 characters, booleans or null, finite numbers, 64-bit integers, times within the
storable range), and a breach is the same 422 VALIDATION_ERROR naming the row and the field
(`loc: ["body", row, "features", name]`), but the batch is checked with a few set operations
per column: the per-row pydantic model cost ~60 µs a row, this costs a few.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from mlops_kit.bounds import EPOCH_US_MAX, EPOCH_US_MIN, INT64_MAX, INT64_MIN
from mlops_kit.errors import parse_json
from numpy.typing import NDArray

from model_registry.monitoring.schemas import MAX_ROWS

MAX_FEATURES = 1000
MAX_KEY = 256
MAX_TEXT = 1024
MAX_REQUEST_ID = 128
MAX_VERSION = 64
MAX_CLASSES = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCALARS = {type(None), bool, int, float, str}


@dataclass
class LoggedBatch:
    """The batch as columns (row i of every list is the batch's row i)."""

    request_ids: list[str]
    versions: list[str]
    timestamps: NDArray[np.int64]  # epoch microseconds; rows without one hold `now`
    features: dict[str, list[Any]]
    predictions: list[Any]
    probabilities: list[Any]
    types: dict[str, set[type]] = field(default_factory=dict)  # each feature's value types
    variants: list[str | None] | None = None  # the A/B variant or shadow each row was served by

    def __len__(self) -> int:
        return len(self.request_ids)


class _Invalid(Exception):
    def __init__(self, loc: list[Any], msg: str, kind: str, value: Any = None) -> None:
        self.loc, self.msg, self.kind, self.value = loc, msg, kind, value


def _fail(prefix: list[Any], exc: _Invalid) -> RequestValidationError:
    error: dict[str, Any] = {"loc": [*prefix, *exc.loc], "msg": exc.msg, "type": exc.kind}
    if isinstance(exc.value, str | int | float | bool) or exc.value is None:
        error["input"] = exc.value
    return RequestValidationError([error])


def parse(raw: bytes, now: datetime) -> LoggedBatch:
    """`[rows]` or `{"predictions": [rows]}`; RequestValidationError names the first bad row."""
    body = parse_json(raw)
    prefix: list[Any] = ["body"]
    if isinstance(body, dict):
        prefix, body = ["body", "predictions"], body.get("predictions")
    if not isinstance(body, list):
        raise RequestValidationError(
            [{"loc": prefix, "msg": "Input should be a valid list", "type": "list_type"}]
        )
    if not 1 <= len(body) <= MAX_ROWS:
        kind = "too_short" if not body else "too_long"
        raise RequestValidationError(
            [{"loc": prefix, "msg": f"List should have 1 to {MAX_ROWS} items", "type": kind}]
        )
    try:
        return _batch(body, now)
    except _Invalid as exc:
        raise _fail(prefix, exc) from None


def _batch(rows: list[Any], now: datetime) -> LoggedBatch:
    for i, row in enumerate(rows):
        if type(row) is not dict:
            raise _Invalid([i], "Input should be a valid dictionary or object", "model_type")
    features = _features(rows)
    types = {key: _check_scalars(values, ["features", key]) for key, values in features.items()}
    return LoggedBatch(
        _texts(rows, "request_id", MAX_REQUEST_ID),
        _texts(rows, "version", MAX_VERSION),
        _timestamps([row.get("timestamp") for row in rows], now),
        features,
        _scalars([row.get("prediction") for row in rows], "prediction"),
        _probabilities([row.get("probability") for row in rows]),
        types,
        _variants(rows),
    )


def _variants(rows: list[dict[str, Any]]) -> list[str | None] | None:
    """The optional `variant` (1-64 characters): None when no row names one."""
    values: list[Any] = [row.get("variant") for row in rows]
    if _types_of(values) == {type(None)}:
        return None
    for i, value in enumerate(values):
        if value is None:
            continue
        if type(value) is not str:
            raise _Invalid([i, "variant"], "Input should be a valid string", "string_type", value)
        if not 1 <= len(value) <= MAX_VERSION or "\x00" in value:
            raise _Invalid(
                [i, "variant"], f"String should have 1 to {MAX_VERSION} characters and no NUL", "string_type"
            )
    return values


def _texts(rows: list[dict[str, Any]], field: str, limit: int) -> list[str]:
    values: list[Any] = [row.get(field) for row in rows]
    if _types_of(values) == {str} and min(map(len, values)) >= 1 and max(map(len, values)) <= limit:
        return values
    for i, value in enumerate(values):
        if value is None and field not in rows[i]:
            raise _Invalid([i, field], "Field required", "missing")
        if type(value) is not str:
            raise _Invalid([i, field], "Input should be a valid string", "string_type", value)
        if not 1 <= len(value) <= limit or "\x00" in value:
            raise _Invalid(
                [i, field], f"String should have 1 to {limit} characters and no NUL", "string_type"
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _types_of(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _micros(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamps(values: list[Any], now: datetime) -> NDArray[np.int64]:
    out = np.empty(len(values), dtype=np.int64)
    default = _micros(now)
    parsed: dict[Any, int] = {}  # batches often repeat a timestamp
    for i, value in enumerate(values):
        if value is None:
            out[i] = default
            continue
        micros = parsed.get(value)
        if micros is None:
            micros = parsed[value] = _timestamp(i, value)
        out[i] = micros
    return out


def _timestamp(row: int, value: Any) -> int:
    try:
        if type(value) is str:
            micros = _micros(datetime.fromisoformat(value))
        elif type(value) in (int, float):
            seconds = float(value) / (1000 if abs(value) > 2e10 else 1)  # pydantic's unix rule
            micros = round(seconds * 1_000_000)
        else:
            raise ValueError
    except (ValueError, OverflowError):
        raise _Invalid(
            [row, "timestamp"], "Input should be a valid datetime", "datetime_parsing", value
        ) from None
    if not EPOCH_US_MIN <= micros <= EPOCH_US_MAX:
        raise _Invalid([row, "timestamp"], "Value error, time is out of range", "value_error", value)
    return micros


def _uniform(rows: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """The columns at C speed when every row's features are an object with the same keys (the
    usual batch); None otherwise."""
    first = rows[0].get("features")
    if type(first) is not dict or not 0 < len(first) <= MAX_FEATURES:
        return None
    keys = list(first)
    getter = operator.itemgetter(*keys)
    try:
        features = [row["features"] for row in rows]
        if _types_of(features) != {dict} or set(map(len, features)) != {len(keys)}:
            return None
        values = list(map(getter, features))
    except (KeyError, TypeError):
        return None
    for key in keys:
        _check_key(0, key)
    columns = dict(zip(keys, map(list, zip(*values, strict=True)), strict=True) if len(keys) > 1 else {})
    if len(keys) == 1:
        columns = {keys[0]: values}
    return columns


def _features(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    uniform = _uniform(rows)
    if uniform is not None:
        return uniform
    n = len(rows)
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        features = row.get("features")
        if type(features) is not dict:
            if features is None and "features" not in row:
                raise _Invalid([i, "features"], "Field required", "missing")
            raise _Invalid([i, "features"], "Input should be a valid dictionary", "dict_type")
        if len(features) > MAX_FEATURES:
            raise _Invalid([i, "features"], f"at most {MAX_FEATURES} features", "too_long")
        for key, value in features.items():
            column = columns.get(key)
            if column is None:
                _check_key(i, key)
                column = columns[key] = [None] * n
            column[i] = value
    return columns


def _check_key(row: int, key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY:
        raise _Invalid(
            [row, "features", key[:300]], f"keys have 1 to {MAX_KEY} characters", "string_too_long"
        )


def _scalars(values: list[Any], field: str) -> list[Any]:
    _check_scalars(values, [field])
    return values


def _check_scalars(values: list[Any], loc: list[Any]) -> set[type]:
    """Every value a scalar, strings short and NUL-free, integers 64-bit (floats are finite:
    JSON cannot say NaN or infinity, and orjson refuses 1e400)."""
    types = _types_of(values)
    bad = types - _SCALARS
    if bad:
        row = next(i for i, v in enumerate(values) if type(v) in bad)
        raise _Invalid([row, *loc], "Input should be a number, string, boolean or null", "scalar_type")
    if str in types:
        texts = [v for v in values if type(v) is str]
        if max(map(len, texts)) > MAX_TEXT or "\x00" in "".join(texts):
            row = next(
                i for i, v in enumerate(values) if type(v) is str and (len(v) > MAX_TEXT or "\x00" in v)
            )
            raise _Invalid(
                [row, *loc], f"String should have at most {MAX_TEXT} characters and no NUL", "string_too_long"
            )
    if int in types:
        ints = [v for v in values if type(v) is int]
        if min(ints) < INT64_MIN or max(ints) > INT64_MAX:
            row = next(i for i, v in enumerate(values) if type(v) is int and not INT64_MIN <= v <= INT64_MAX)
            raise _Invalid(
                [row, *loc], "Input should be a 64-bit integer", "int_range", str(values[row])[:100]
            )
    return types


def _probabilities(values: list[Any]) -> list[Any]:
    types = _types_of(values)
    if types <= {float, int, type(None)}:
        _check_scalars(values, ["probability"])
        return values
    for i, value in enumerate(values):
        if type(value) is list:
            if len(value) > MAX_CLASSES or not all(type(p) in (float, int) for p in value):
                raise _Invalid([i, "probability"], "Input should be a list of numbers", "list_type")
        elif type(value) not in (float, int, type(None)) or type(value) is bool:
            raise _Invalid([i, "probability"], "Input should be a number or a list of numbers", "float_type")
    return values
