"""Reading MLflow request fields: JSON bodies for POST, query strings for GET."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Body, Request
from mlops_kit.errors import parse_json

from experiment_tracking import validation
from experiment_tracking.errors import InvalidValue
from experiment_tracking.runs.service import Batch, MetricPoint
from experiment_tracking.values import now_ms, parse_metric_value

MAX_FIELDS = 64  # an MLflow request message has a handful of fields
JsonBody = Annotated[
    dict[str, Any], Body(max_length=MAX_FIELDS, description="the MLflow request message as JSON")
]
JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "maxProperties": MAX_FIELDS}}},
    }
}


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    data = parse_json(raw) if raw else {}
    if not isinstance(data, dict):
        raise InvalidValue("request body must be a JSON object", {})
    if len(data) > MAX_FIELDS:
        raise InvalidValue(f"request body has {len(data)} fields; at most {MAX_FIELDS}", {})
    return data


def query(request: Request) -> dict[str, Any]:
    return dict(request.query_params)


def required(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is None or value == "":
        raise InvalidValue(f"Missing value for required parameter '{name}'.", {"parameter": name})
    return value


def text(data: dict[str, Any], name: str, limit: int = validation.MAX_TAG_VALUE) -> str:
    value = required(data, name)
    if not isinstance(value, str):
        raise InvalidValue(f"parameter '{name}' must be a string, got {value!r}"[:300], {"parameter": name})
    return validation.text("parameter", name, value, limit)


def run_id(data: dict[str, Any]) -> str:
    value = data.get("run_id") or data.get("run_uuid")
    if not value:
        raise InvalidValue("Missing value for required parameter 'run_id'.", {"parameter": "run_id"})
    return str(value)


def key_values(items: Any, where: str) -> dict[str, Any]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InvalidValue(f"'{where}' must be a list of {{key, value}} objects", {"parameter": where})
    found: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "key" not in item:
            raise InvalidValue(f"{where}[{index}] must be an object with 'key' and 'value'", {"index": index})
        key, value = item["key"], item.get("value")
        if key in found and found[key] != value and where == "params":
            raise InvalidValue(
                f"duplicate param key {key!r} with different values in one batch", {"key": key}
            )
        found[key] = value
    return found


def metric_point(item: Any, where: str) -> MetricPoint:
    """The key is checked by the service (`runs.service.log_batch`), with every other key."""
    if not isinstance(item, dict):
        raise InvalidValue(f"{where} must be an object", {"parameter": where})
    timestamp = item.get("timestamp")
    return MetricPoint(
        key=cast(str, item.get("key")),
        value=parse_metric_value(required(item, "value"), f"{where}.value"),
        timestamp=validation.epoch_millis(f"{where}.timestamp", timestamp)
        if timestamp is not None
        else now_ms(),
        step=validation.integer(f"{where}.step", item.get("step") or 0),
        model_id=optional_text(item, "model_id", 36),
        dataset_name=optional_text(item, "dataset_name", 500),
        dataset_digest=optional_text(item, "dataset_digest", 36),
    )


def optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    """An optional string field, no longer than its column."""
    value = data.get(name)
    return validation.text("field", name, value, limit) if value else None


def batch(data: dict[str, Any]) -> Batch:
    """The batch's sizes and keys are checked by the service (`runs.service.log_batch`)."""
    metrics = data.get("metrics") or []
    if not isinstance(metrics, list):
        raise InvalidValue("'metrics' must be a list", {"parameter": "metrics"})
    params, tags = key_values(data.get("params"), "params"), key_values(data.get("tags"), "tags")
    return Batch([metric_point(m, f"metrics[{i}]") for i, m in enumerate(metrics)], params, tags)


def string_list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name) or []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise InvalidValue(f"'{name}' must be a list of strings", {"parameter": name})
    return [str(v) for v in value]
