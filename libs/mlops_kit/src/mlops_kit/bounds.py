"""What storage holds, as types defined once: integers, times, durations and strings that SQLite
and PostgreSQL both store the same way. A value outside them is a 422 that names the field, on
both backends, instead of a 500 (or a 503 "retryable" that a client retries forever).

- integers: BIGINT (``Int64``); offsets stop well inside it so ``offset + limit`` still fits;
- times: Python's datetime range (years 1-9999, which PostgreSQL's timestamp range contains),
  kept a day inside so that any UTC offset still converts; epoch numbers are bounded to the same;
- durations: at most ``MAX_DURATION_SECONDS`` (100 years), so ``now - duration`` is a time;
- strings: a documented maximum length and no NUL character (PostgreSQL text cannot hold one);
- free-form JSON (parameters, outputs): bounded size, depth and strings, no NUL, finite numbers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field, StringConstraints

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_OFFSET = 2**62  # offset + any page size stays a BIGINT
# OpenAPI states bounds as JSON numbers, which FastAPI writes as doubles: the largest double
# below 2^63, so a schema-conforming client never sends a value past BIGINT
INT64_SCHEMA_MAX = 2**63 - 1024

MIN_TIME = datetime(1, 1, 2, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


EPOCH_US_MIN = _micros(MIN_TIME)
EPOCH_US_MAX = _micros(MAX_TIME)
EPOCH_MS_MIN = -(-EPOCH_US_MIN // 1000)
EPOCH_MS_MAX = EPOCH_US_MAX // 1000
EPOCH_S_MIN = -(-EPOCH_US_MIN // 1_000_000)
EPOCH_S_MAX = EPOCH_US_MAX // 1_000_000
TIME_RULE = "between 0001-01-02 and 9999-12-30 (UTC)"
MAX_DURATION_SECONDS = 100 * 366 * 86_400

NUL_FREE = r"^[^\x00]*$"
MAX_JSON_DEPTH = 32
MAX_JSON_STRING = 65_536


class OutOfRange(ValueError):
    """A value storage cannot hold (the caller names the field)."""


def check_int64(value: int, what: str = "value") -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise OutOfRange(f"{what} {value} is outside the 64-bit integer range [-2^63, 2^63-1]")
    return value


def check_epoch_micros(value: int, what: str = "timestamp") -> int:
    if not EPOCH_US_MIN <= value <= EPOCH_US_MAX:
        raise OutOfRange(f"{what} is out of range: must be {TIME_RULE}")
    return value


def check_epoch_millis(value: int, what: str = "timestamp") -> int:
    if not EPOCH_MS_MIN <= value <= EPOCH_MS_MAX:
        raise OutOfRange(
            f"{what} {value} is out of range: epoch milliseconds {TIME_RULE} "
            f"([{EPOCH_MS_MIN}, {EPOCH_MS_MAX}])"
        )
    return value


def check_datetime(value: datetime, what: str = "time") -> datetime:
    """Aware times are checked in UTC (naive ones are taken as UTC)."""
    try:
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise OutOfRange(f"{what} is out of range: must be {TIME_RULE}") from None
    if not MIN_TIME <= moment <= MAX_TIME:
        raise OutOfRange(f"{what} is out of range: must be {TIME_RULE}")
    return value


def check_duration_seconds(value: float, what: str = "duration") -> float:
    if not (math.isfinite(value) and 0 <= value <= MAX_DURATION_SECONDS):
        raise OutOfRange(f"{what} must be between 0 and {MAX_DURATION_SECONDS} seconds (100 years)")
    return value


def check_timedelta(value: timedelta, what: str = "duration") -> timedelta:
    check_duration_seconds(value.total_seconds(), what)
    return value


def check_text(value: str, max_length: int, what: str = "string") -> str:
    if "\x00" in value:
        raise OutOfRange(f"{what} contains a NUL character, which cannot be stored")
    if len(value) > max_length:
        raise OutOfRange(f"{what} is {len(value)} characters; the limit is {max_length}")
    return value


def check_json(value: Any, what: str = "value", *, depth: int = 0) -> Any:
    """Free-form JSON both backends store alike: no NUL, finite numbers, 64-bit integers,
    bounded depth and string length."""
    if depth > MAX_JSON_DEPTH:
        raise OutOfRange(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, MAX_JSON_STRING, what)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        check_int64(value, what)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise OutOfRange(f"{what} must be a finite number (JSON has no NaN or infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), MAX_JSON_STRING, f"{what} key")
            check_json(item, f"{what}.{key}"[:200], depth=depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json(item, f"{what}[{i}]", depth=depth + 1)
    return value


def _json_checked(value: Any) -> Any:
    return check_json(value, "value")


def _keys_checked(value: dict[str, Any]) -> dict[str, Any]:
    for key in value:
        check_text(key, MAX_JSON_STRING, "key")
    return value


# integers and floats
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_SCHEMA_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# times
EpochMillis = Annotated[
    int, Field(ge=EPOCH_MS_MIN, le=EPOCH_MS_MAX, description=f"epoch milliseconds, {TIME_RULE}")
]
EpochSeconds = Annotated[
    float,
    Field(ge=EPOCH_S_MIN, le=EPOCH_S_MAX, allow_inf_nan=False, description=f"epoch seconds, {TIME_RULE}"),
]
BoundedDatetime = Annotated[datetime, AfterValidator(check_datetime)]
DurationSeconds = Annotated[
    int, Field(ge=0, le=MAX_DURATION_SECONDS, description="seconds, at most 100 years")
]
# strings: every stored string has one of these lengths and no NUL (OpenAPI shows both); a
# service-specific length is `Annotated[str, Field(max_length=N), NO_NUL]`
NO_NUL = StringConstraints(pattern=NUL_FREE)
NulFreeStr = Annotated[str, NO_NUL]  # give it a length: `NulFreeStr = Field(max_length=N)`
IdStr = Annotated[str, StringConstraints(max_length=128, pattern=NUL_FREE)]
NameStr = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NUL_FREE)]
TagStr = Annotated[str, StringConstraints(max_length=256, pattern=NUL_FREE)]
KeyStr = Annotated[str, StringConstraints(max_length=256, pattern=NUL_FREE)]
ValueStr = Annotated[str, StringConstraints(max_length=8000, pattern=NUL_FREE)]
UriStr = Annotated[str, StringConstraints(max_length=2048, pattern=NUL_FREE)]
ExpressionStr = Annotated[str, StringConstraints(max_length=8000, pattern=NUL_FREE)]
DescriptionStr = Annotated[str, StringConstraints(max_length=20_000, pattern=NUL_FREE)]
CommandStr = Annotated[str, StringConstraints(max_length=65_536, pattern=NUL_FREE)]
TextStr = Annotated[str, StringConstraints(max_length=MAX_JSON_STRING, pattern=NUL_FREE)]
# path parameters: names and ids, and artifact paths (`{path:path}`)
PathStr = Annotated[str, Path(max_length=256, pattern=NUL_FREE)]
PathLong = Annotated[str, Path(max_length=1024, pattern=NUL_FREE)]
# a map's keys: a pattern on them would render as `patternProperties`, so NUL is checked after
MapKey = Annotated[str, StringConstraints(min_length=1, max_length=256)]
NUL_FREE_KEYS = AfterValidator(_keys_checked)
# tags as a map: at most 100, keys 1-256 and values up to 8,000 characters
Tags = Annotated[dict[MapKey, ValueStr], Field(max_length=100), NUL_FREE_KEYS]
# free-form JSON values and objects (parameters, outputs, environments)
JsonValue = Annotated[Any, AfterValidator(_json_checked)]
JsonObject = Annotated[dict[MapKey, Any], Field(max_length=1000), AfterValidator(_json_checked)]
