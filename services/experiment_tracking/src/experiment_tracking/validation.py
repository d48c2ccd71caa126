"""The MLflow client's own validation limits, enforced server-side for both APIs."""

from __future__ import annotations

import re
from typing import Annotated, Any

from mlops_kit.bounds import NO_NUL, NUL_FREE_KEYS, Int64, OutOfRange, check_epoch_millis, check_int64
from pydantic import Field

from experiment_tracking.errors import InvalidValue

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_NAME = 500
MAX_EXPERIMENT_TAG_VALUE = 20000
# the column holds 1000; a run's artifact_uri appends "/<run id>/artifacts" to it
MAX_ARTIFACT_LOCATION = 900
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS = 50000
_KEY = re.compile(r"^[/\w.\- :]*$")

# the same limits as request-schema types (OpenAPI shows them; NUL is never storable)
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]
ParamValue = Annotated[str, Field(max_length=MAX_PARAM_VALUE), NO_NUL]
TagValue = Annotated[str, Field(max_length=MAX_TAG_VALUE), NO_NUL]
Scalar = ParamValue | Int64 | float | bool
RunTags = Annotated[dict[Key, TagValue], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH), NUL_FREE_KEYS]
RunParams = Annotated[dict[Key, Scalar], Field(max_length=MAX_PARAMS_TAGS_PER_BATCH), NUL_FREE_KEYS]
# `{"accuracy": 0.95, "step": 1}` or `{"metrics": [...]}`: checked item by item by the router
MetricsBody = Annotated[dict[Key, Any], Field(max_length=MAX_METRICS_PER_BATCH + 2)]
ExperimentTags = Annotated[
    dict[Key, Annotated[str, Field(max_length=MAX_EXPERIMENT_TAG_VALUE), NO_NUL]],
    Field(max_length=MAX_PARAMS_TAGS_PER_BATCH),
    NUL_FREE_KEYS,
]


def key(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValue(f"{kind} name must be a non-empty string, got {value!r}", {"name": value})
    if len(value) > MAX_KEY:
        raise InvalidValue(
            f"{kind} name {value[:40]!r}... is {len(value)} characters; the limit is {MAX_KEY}",
            {"name": value[:MAX_KEY], "max_length": MAX_KEY},
        )
    if not _KEY.match(value) or value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise InvalidValue(
            f"invalid {kind} name {value!r}: names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/), and may not start with "
            "'/' or contain '..'",
            {"name": value},
        )
    return value


def text(kind: str, name: str, raw: Any, limit: int) -> str:
    if raw is None:
        raise InvalidValue(f"{kind} {name!r} has no value", {"name": name})
    value = raw if isinstance(raw, str) else str(raw)
    if "\x00" in value:
        raise InvalidValue(
            f"{kind} {name!r} value contains a NUL character, which cannot be stored", {"name": name}
        )
    if len(value) > limit:
        raise InvalidValue(
            f"{kind} {name!r} value is {len(value)} characters; the limit is {limit}",
            {"name": name, "length": len(value), "max_length": limit},
        )
    return value


def integer(name: str, value: Any) -> int:
    """A 64-bit integer (what the BIGINT columns hold), from a JSON number or a numeric string."""
    number = _integer(name, value)
    try:
        return check_int64(number, name)
    except OutOfRange as exc:
        raise InvalidValue(str(exc), {"name": name}) from None


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be an integer, got {value!r}", {"name": name})
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 40:
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise InvalidValue(f"{name} must be an integer, got {value!r}"[:300], {"name": name})


def epoch_millis(name: str, value: Any) -> int:
    """A time in epoch milliseconds that converts to a date (years 1-9999)."""
    try:
        return check_epoch_millis(integer(name, value), name)
    except OutOfRange as exc:
        raise InvalidValue(str(exc), {"name": name}) from None


def batch_sizes(metrics: int, params: int, tags: int) -> None:
    for kind, count, limit in (
        ("metrics", metrics, MAX_METRICS_PER_BATCH),
        ("params", params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", tags, MAX_PARAMS_TAGS_PER_BATCH),
        ("metrics, params and tags", metrics + params + tags, MAX_ENTITIES_PER_BATCH),
    ):
        if count > limit:
            raise InvalidValue(
                f"a batch may hold at most {limit} {kind}; got {count}; nothing was stored",
                {"kind": kind, "count": count, "limit": limit},
            )


def experiment_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("experiment name must be a non-empty string", {"name": value})
    if len(value) > MAX_EXPERIMENT_NAME:
        raise InvalidValue(
            f"experiment name is {len(value)} characters; the limit is {MAX_EXPERIMENT_NAME}",
            {"max_length": MAX_EXPERIMENT_NAME},
        )
    return value


def artifact_location(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_ARTIFACT_LOCATION:
        raise InvalidValue(
            f"artifact_location must be a string of at most {MAX_ARTIFACT_LOCATION} characters",
            {"max_length": MAX_ARTIFACT_LOCATION},
        )
    return value


def max_results(value: Any, default: int, limit: int = MAX_RESULTS) -> int:
    if value is None:
        return default
    number = integer("max_results", value)
    if not 1 <= number <= limit:
        raise InvalidValue(f"max_results must be between 1 and {limit}, got {number}", {"limit": limit})
    return number
