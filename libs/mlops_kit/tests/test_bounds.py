"""The kit's bounds: what storage holds, as checks and types (issue 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from mlops_kit.bounds import (
    EPOCH_MS_MAX,
    EPOCH_MS_MIN,
    MAX_DURATION_SECONDS,
    BoundedDatetime,
    EpochMillis,
    Int64,
    JsonObject,
    NameStr,
    OutOfRange,
    Tags,
    check_datetime,
    check_duration_seconds,
    check_epoch_micros,
    check_json,
)
from mlops_kit.nul_guard import json_has_nul
from pydantic import TypeAdapter, ValidationError


@pytest.mark.parametrize(
    ("body", "has_nul"),
    [
        (b'{"a": "x\\u0000y"}', True),
        (b'{"a": "\\\\\\u0000"}', True),
        (b'{"a": "\\\\u0000"}', False),
        (b'{"a": "\\\\\\\\u0000"}', False),
        (b'{"a": "u0000"}', False),
        (b'{"a": "\x00"}', True),
        (b'{"a": "\\u00001"}', True),
        (b'{"a": "\\u0001"}', False),
    ],
)
def test_an_escaped_nul_is_told_from_an_escaped_backslash(body: bytes, has_nul: bool) -> None:
    assert json_has_nul(body) is has_nul


def test_epoch_bounds_are_the_dates_python_and_postgresql_both_hold() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert (epoch + timedelta(milliseconds=EPOCH_MS_MAX)).year == 9999
    assert (epoch + timedelta(milliseconds=EPOCH_MS_MIN)).year == 1
    with pytest.raises(OutOfRange):
        check_epoch_micros(EPOCH_MS_MAX * 1000 + 1000)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 12, 0),
    ],
)
def test_a_datetime_whose_utc_value_leaves_years_1_to_9999_is_out_of_range(moment: datetime) -> None:
    with pytest.raises(OutOfRange):
        check_datetime(moment)
    with pytest.raises(ValidationError):
        TypeAdapter(BoundedDatetime).validate_python(moment)


def test_durations_stop_at_100_years_and_refuse_nan() -> None:
    assert check_duration_seconds(MAX_DURATION_SECONDS) == MAX_DURATION_SECONDS
    for bad in (MAX_DURATION_SECONDS + 1, -1, float("nan"), float("inf")):
        with pytest.raises(OutOfRange):
            check_duration_seconds(bad)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"a": "\x00"},
        {"\x00": 1},
        {"a": [1, float("nan")]},
        {"a": 2**63},
        {"a": "x" * 65_537},
        {"a": _nested(40)},
    ],
    ids=["nul", "nul-key", "nan", "int65", "long", "deep"],
)
def test_free_form_json_refuses_what_one_backend_would_store_and_the_other_not(value: dict) -> None:
    with pytest.raises(OutOfRange):
        check_json(value)
    with pytest.raises(ValidationError):
        TypeAdapter(JsonObject).validate_python(value)


def test_bounded_types_refuse_nul_and_length_and_say_so_in_json_schema() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(NameStr).validate_python("a\x00b")
    with pytest.raises(ValidationError):
        TypeAdapter(Tags).validate_python({"k\x00": "v"})
    with pytest.raises(ValidationError):
        TypeAdapter(Int64).validate_python(2**63)
    with pytest.raises(ValidationError):
        TypeAdapter(EpochMillis).validate_python(10**20)
    schema = TypeAdapter(Tags).json_schema()
    assert schema["maxProperties"] == 100
    assert schema["additionalProperties"]["maxLength"] == 8000
    assert TypeAdapter(NameStr).json_schema()["maxLength"] == 256
