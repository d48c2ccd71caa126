"""Feature value types and the one place values are checked and converted.

Types: int, float, string, bool, timestamp, list[int], list[float]. Timestamps are accepted as
ISO 8601 strings (a time without a timezone is UTC), epoch seconds (int or float) or datetimes,
and stored as integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from mlops_kit.bounds import EPOCH_S_MAX, EPOCH_S_MIN, TIME_RULE, OutOfRange, check_epoch_micros

TYPES = ("int", "float", "string", "bool", "timestamp", "list[int]", "list[float]")
ALIASES = {
    "integer": "int",
    "int64": "int",
    "int32": "int",
    "double": "float",
    "float64": "float",
    "float32": "float",
    "str": "string",
    "boolean": "bool",
    "datetime": "timestamp",
    "unix_timestamp": "timestamp",
    "list_int": "list[int]",
    "list_float": "list[float]",
    "array<int>": "list[int]",
    "array<float>": "list[float]",
}
INT64 = (-(2**63), 2**63 - 1)
MAX_STRING = 65_536  # a string feature value, in characters
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def normalize_type(raw: str) -> str | None:
    """The canonical type name, or None when `raw` is not a type we know."""
    text = raw.strip().lower().replace(" ", "")
    text = ALIASES.get(text, text)
    return text if text in TYPES else None


class InvalidValue(ValueError):
    """Why a value does not fit (the caller adds the row and the column)."""


def to_micros(value: Any) -> int:
    """A timestamp as integer µs since the epoch, UTC. Naive times are taken as UTC."""
    if isinstance(value, bool):
        raise InvalidValue(f"expected a timestamp, got a boolean {value!r}")
    if isinstance(value, int | float):
        return _epoch_seconds(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidValue(f"expected an ISO 8601 timestamp, got {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            delta = value - _EPOCH
        except OverflowError:  # an offset pushes it past year 1 or 9999
            raise InvalidValue(f"timestamp {value.isoformat()} is out of range: {TIME_RULE}") from None
        return checked_micros((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
    raise InvalidValue(f"expected a timestamp, got {type(value).__name__} {value!r}")


def _epoch_seconds(value: float) -> int:
    if not (math.isfinite(value) and EPOCH_S_MIN <= value <= EPOCH_S_MAX):
        raise InvalidValue(
            f"epoch seconds {value!r} are out of range: {TIME_RULE} ({EPOCH_S_MIN} to {EPOCH_S_MAX})"
        )
    return value * 1_000_000 if isinstance(value, int) else round(value * 1_000_000)


def checked_micros(us: int) -> int:
    """A stored timestamp (µs) that converts back to a date: years 1-9999."""
    try:
        return check_epoch_micros(us)
    except OutOfRange as exc:
        raise InvalidValue(str(exc)) from None


def from_micros(us: int) -> str:
    """ISO 8601 in UTC with a trailing Z, microseconds only when there are any."""
    seconds, micros = divmod(us, 1_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


def iso(moment: datetime | None) -> str | None:
    """A registry time as ISO 8601 in UTC with a trailing Z."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"expected an int, got a boolean {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            raise InvalidValue(f"expected an int, got {value!r}") from None
    else:
        raise InvalidValue(f"expected an int, got {type(value).__name__} {value!r}")
    if not INT64[0] <= result <= INT64[1]:
        raise InvalidValue(f"int {result} is outside the 64-bit range")
    return result


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidValue(f"expected a float, got a boolean {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise InvalidValue(f"expected a float, got {value!r}") from None
    raise InvalidValue(f"expected a float, got {type(value).__name__} {value!r}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidValue(f"expected a bool, got {type(value).__name__} {value!r}")


def _string(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise InvalidValue(f"a string of {len(value)} characters; the limit is {MAX_STRING}")
        if "\x00" in value:
            raise InvalidValue("a string with a NUL character, which cannot be stored")
        return value
    raise InvalidValue(f"expected a string, got {type(value).__name__} {value!r}")


def coerce(value: Any, type_: str) -> Any:
    """`value` converted to `type_`'s stored form; None stays None (a missing value). Raises
    InvalidValue saying why it does not fit. Stored forms: int, float, str, bool, timestamp as µs
    int, lists as lists. NaN and infinities are kept as floats (JSON answers show them as null)."""
    if value is None:
        return None
    if type_ == "int":
        return _int(value)
    if type_ == "float":
        return _float(value)
    if type_ == "string":
        return _string(value)
    if type_ == "bool":
        return _bool(value)
    if type_ == "timestamp":
        return to_micros(value)
    if type_ in ("list[int]", "list[float]"):
        if not isinstance(value, list | tuple):
            raise InvalidValue(f"expected a list, got {type(value).__name__} {value!r}")
        item = _int if type_ == "list[int]" else _float
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except InvalidValue as exc:
                raise InvalidValue(f"item {i}: {exc}") from None
        return out
    raise InvalidValue(f"unknown type {type_!r}")


def present(value: Any, type_: str) -> Any:
    """A stored value as the API shows it (timestamps back to ISO 8601)."""
    if value is not None and type_ == "timestamp":
        return from_micros(int(value))
    return value
