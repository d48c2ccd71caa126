"""The one shape every prediction protocol decodes into, its limits, and the checks the decoders share.

Framework-free (orjson only): a decoder turns a raw body into `Inputs` or raises `ProtocolError`, never
any other exception, whatever the bytes. Values are checked once here, so the model code behind can
build arrays without meeting NaN, 65-bit integers, nested objects or megabyte strings.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson

MAX_ROWS = 10_000
MAX_COLUMNS = 10_000
MAX_STRING = 1024
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


class ProtocolError(Exception):
    """A body that does not have the protocol's shape; the message says what was expected and where."""

    status_code = 422
    code = "INVALID_PREDICTION_REQUEST"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class UnsupportedContentType(ProtocolError):
    """A content type the protocol does not speak (MLflow answers these with 415)."""

    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


@dataclass(slots=True)
class Inputs:
    """A decoded prediction request: row-major scalars plus what came with each row.

    `entity` dicts may be shared between rows (one object when the request gave one for all): read-only.
    """

    columns: list[str] | None  # names when the request named its columns, else None (positional)
    rows: list[list[Any]]  # row-major scalars: int (64-bit), finite float, str, bool, None
    request_ids: list[str | None]  # per row
    entity: list[dict[str, Any]]  # per row: user_id and entity keys ({} when none)
    params: dict[str, Any]  # protocol parameters (OIP "parameters", MLflow "params")
    single: bool = False  # one unbatched row was sent: answer with one object, not a list
    outputs: list[str] | None = None  # OIP: the output tensors asked for (None: all)


def make_inputs(
    columns: list[str] | None,
    rows: list[list[Any]],
    *,
    request_id: str | None = None,
    entity: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    single: bool = False,
) -> Inputs:
    """Inputs whose rows share one request id and one entity dict."""
    n = len(rows)
    return Inputs(columns, rows, [request_id] * n, [entity or {}] * n, params or {}, single)


def error(message: str, path: str, **details: Any) -> ProtocolError:
    return ProtocolError(f"{message} (at {path})", {"path": path, **details})


def json_type(value: Any) -> str:
    """The JSON name of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


# orjson reads an integer literal past 64 bits as a float, silently; such a float (|v| >= 2**63) makes
# check_values look at the body it came from, once, for the literal (a regex pass per body would cost
# more than the whole decode)
_TWO_63 = 2.0**63
_BODY: ContextVar[bytes] = ContextVar("protocols_json_body", default=b"")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_STRING_OR_LONG_INT = re.compile(rb'"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])(-?\d{19,})(?![\d.eE])')


def loads(body: bytes | bytearray | memoryview | str, *, nan_as_null: bool = False) -> Any:
    """Parse JSON; every failure (empty, invalid, not UTF-8, too deep) is a ProtocolError.

    `nan_as_null` reads the `NaN` token (not JSON, but what Python's json and so MLflow's client write
    for a missing value) as null; ±Infinity stays an error.
    """
    raw = body.encode(errors="surrogatepass") if isinstance(body, str) else bytes(body)
    if not raw:
        raise ProtocolError("The request body is empty; expected a JSON object.", {"path": "$"})
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if nan_as_null and b"NaN" in raw:
            return _loads_with_nan(raw)
        raise ProtocolError(f"The request body is not valid JSON: {exc}", {"path": "$"}) from None
    _BODY.set(raw)
    return doc


def _loads_with_nan(body: bytes) -> Any:
    """The slow path for the rare body with NaN: the standard library's parser (exact integers)."""
    _BODY.set(b"")  # integers stay Python ints here, checked by value

    def constant(token: str) -> None:
        if token != "NaN":
            raise ProtocolError(f"Expected a finite number, got {token}", {"path": "$"})

    try:
        doc = json.loads(body, parse_constant=constant)
        # the standard library lets a lone surrogate escape through (orjson doesn't); encoding finds it
        if _SURROGATE_ESCAPE.search(body):
            json.dumps(doc, ensure_ascii=False).encode()
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 4300+ digits, lone surrogates
        raise ProtocolError(f"The request body is not valid JSON: {exc}", {"path": "$"}) from None
    return doc


def _huge_int_literal() -> str | None:
    """An integer literal outside [-2**63, 2**64) in the last body `loads` parsed (scanned once)."""
    raw = _BODY.get()
    _BODY.set(b"")
    for match in _STRING_OR_LONG_INT.finditer(raw):
        literal = match.group(1)
        if literal is not None and not INT64_MIN <= int(literal) <= UINT64_MAX:
            return literal.decode()
    return None


def expect_object(doc: Any, example: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise error(f"Expected a JSON object such as {example}, got {json_type(doc)}", "$")
    return doc


def check_fields(doc: dict[str, Any], allowed: frozenset[str], example: str) -> None:
    unknown = doc.keys() - allowed
    if unknown:
        names = ", ".join(sorted(unknown)[:10])
        raise error(
            f"Unknown field(s) {names}; expected {example} with optional {', '.join(sorted(allowed))}",
            f"$.{sorted(unknown)[0]}",
        )


def _value_error(value: Any, path: str) -> ProtocolError:
    if isinstance(value, float):
        return error(f"Expected a finite number, got {value}", path)
    if isinstance(value, int) and not isinstance(value, bool):
        return error(f"The integer {value} does not fit in 64 bits (signed)", path)
    if isinstance(value, str):
        return error(f"A string of {len(value)} characters is longer than the limit of {MAX_STRING}", path)
    return error(
        f"Expected a scalar value (a number, string, boolean or null), got {json_type(value)}; "
        "nested arrays and objects are not feature values",
        path,
    )


def check_values(
    values: list[Any], where: str, row: int | None = None, names: list[str] | None = None
) -> None:
    """Every value a finite float, a signed 64-bit int, a string of at most MAX_STRING, a bool or None.

    The path of a bad value is built only when one is found (`where[row][j]` or `where.name`).
    """
    for j, v in enumerate(values):
        t = type(v)
        if t is float:
            if -_TWO_63 < v < _TWO_63:  # false for NaN and ±inf too
                continue
            if v - v == 0.0:
                literal = _huge_int_literal()
                if literal is None:
                    continue
                raise error(
                    f"The integer {literal[:40]} does not fit in 64 bits", _path(where, row, j, names)
                )
        elif t is int:
            if INT64_MIN <= v <= INT64_MAX:
                continue
        elif t is str:
            if len(v) <= MAX_STRING:
                continue
        elif t is bool or v is None:
            continue
        raise _value_error(v, _path(where, row, j, names))


def _path(where: str, row: int | None, j: int, names: list[str] | None) -> str:
    if row is not None:
        where = f"{where}[{row}]"
    return f"{where}.{names[j]}" if names is not None else f"{where}[{j}]"


def check_row_count(n: int, where: str) -> None:
    if n == 0:
        raise error("Expected at least one row, got none", where)
    if n > MAX_ROWS:
        raise error(f"{n} rows is more than the limit of {MAX_ROWS} per request", where, rows=n)


def check_width(k: int, where: str) -> None:
    if k > MAX_COLUMNS:
        raise error(f"{k} columns is more than the limit of {MAX_COLUMNS}", where, columns=k)


def check_names(names: list[Any], where: str) -> list[str]:
    """Column names: strings, bounded, unique, at most MAX_COLUMNS."""
    check_width(len(names), where)
    for j, name in enumerate(names):
        if type(name) is not str:
            raise error(f"Expected a column name (a string), got {json_type(name)}", f"{where}[{j}]")
        if len(name) > MAX_STRING:
            raise error(f"A column name longer than {MAX_STRING} characters", f"{where}[{j}]")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise error(f"Column {name!r} is named twice", where, column=name)
            seen.add(name)
    return names


def rows_from_lists(items: list[Any], where: str) -> list[list[Any]]:
    """A batch of positional rows: arrays of scalars, all the same length."""
    check_row_count(len(items), where)
    first = items[0]
    if type(first) is not list:
        raise error(f"Expected a row (an array of values), got {json_type(first)}", f"{where}[0]")
    width = len(first)
    check_width(width, f"{where}[0]")
    for i, row in enumerate(items):
        if type(row) is not list:
            raise error(f"Expected a row (an array of {width} values), got {json_type(row)}", f"{where}[{i}]")
        if len(row) != width:
            raise error(
                f"Row {i} has {len(row)} values but row 0 has {width}; every row needs the same length",
                f"{where}[{i}]",
                row=i,
            )
        check_values(row, where, i)
    return items


def rows_from_records(items: list[Any], where: str) -> tuple[list[str], list[list[Any]]]:
    """A batch of named rows (objects): the columns are every key in first-seen order, missing ones None."""
    check_row_count(len(items), where)
    columns: dict[str, None] = {}
    for i, record in enumerate(items):
        if type(record) is not dict:
            raise error(
                f"Expected a record (an object of named values), got {json_type(record)}", f"{where}[{i}]"
            )
        if len(record) != len(columns) or record.keys() != columns.keys():
            columns.update(dict.fromkeys(record))
            check_width(len(columns), f"{where}[{i}]")
    names = check_names(list(columns), where)
    rows = [_record_row(record, names) for record in items]
    for i, row in enumerate(rows):
        check_values(row, where, i, names)
    return names, rows


def _record_row(record: dict[str, Any], names: list[str]) -> list[Any]:
    if len(names) == 1:
        return [record.get(names[0])]
    try:
        return list(itemgetter(*names)(record)) if names else []
    except KeyError:
        return [record.get(name) for name in names]


def rows_from_columns(mapping: dict[str, Any], where: str) -> tuple[list[str], list[list[Any]], bool]:
    """Named columns `{"col": [v, ...]}` (a batch), or `{"col": v}` (one row, flagged single)."""
    names = check_names(list(mapping), where)
    values = list(mapping.values())
    if not values:
        raise error("Expected at least one column, got an empty object", where)
    if not any(type(v) is list for v in values):
        check_values(values, where, None, names)
        return names, [values], True
    n = len(values[0]) if type(values[0]) is list else -1
    for name, column in zip(names, values, strict=True):
        if type(column) is not list:
            raise error(
                f"Expected column {name!r} to be an array of values, got {json_type(column)}",
                f"{where}.{name}",
            )
        if len(column) != n:
            raise error(
                f"Column {name!r} has {len(column)} values but {names[0]!r} has {n}; "
                "columns need the same length",
                f"{where}.{name}",
            )
        check_values(column, f"{where}.{name}")
    check_row_count(n, f"{where}.{names[0]}")
    return names, [list(row) for row in zip(*values, strict=True)], False


def check_request_id(value: Any, path: str) -> str:
    if type(value) is not str or len(value) > MAX_STRING:
        raise error(
            f"Expected a request id (a string of at most {MAX_STRING} characters), got {json_type(value)}",
            path,
        )
    return value


def check_entity_value(value: Any, path: str) -> str | int:
    if (type(value) is str and len(value) <= MAX_STRING) or (
        type(value) is int and INT64_MIN <= value <= INT64_MAX
    ):
        return value
    raise error(f"Expected an entity key (a string or a 64-bit integer), got {json_type(value)}", path)


def check_entity(value: Any, path: str) -> dict[str, Any]:
    """Entity keys given with a row: `{"user_id": "u1", "merchant_id": 7}`."""
    if type(value) is not dict:
        raise error(
            f'Expected entity keys (an object such as {{"user_id": "u1"}}), got {json_type(value)}', path
        )
    check_width(len(value), path)
    for name, key in value.items():
        if len(name) > MAX_STRING:
            raise error(f"An entity name longer than {MAX_STRING} characters", path)
        check_entity_value(key, f"{path}.{name}")
    return value


def check_params(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise error(f"Expected parameters as a JSON object, got {json_type(value)}", path)
    return value
