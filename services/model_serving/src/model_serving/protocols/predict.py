"""The platform's own prediction bodies: the original documents' `POST /predict` and
`POST /api/deployments/{name}/predict`, decoded into `Inputs` and answered per row with
`{"prediction", "probability", "model_version", "timestamp"}` (one object for one unbatched row,
`{"predictions": [...]}` for a batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from model_serving.protocols.common import (
    Inputs,
    check_entity,
    check_entity_value,
    check_fields,
    check_names,
    check_params,
    check_request_id,
    check_values,
    check_width,
    error,
    expect_object,
    json_type,
    loads,
    rows_from_columns,
    rows_from_lists,
    rows_from_records,
)

_PREDICT_EXAMPLE = '{"features": [1.5, -0.3, ...]}'
_PREDICT_FIELDS = frozenset({"features", "user_id", "request_id", "entities", "params"})
_DEPLOYMENT_EXAMPLE = '{"instances": [[1.5, -0.3, ...], ...]} or {"inputs": {"column": [...], ...}}'
_DEPLOYMENT_FIELDS = frozenset(
    {"instances", "inputs", "user_id", "request_id", "request_ids", "entities", "params"}
)

Decoded = tuple[list[str] | None, list[list[Any]], bool]  # columns, rows, single


def decode_predict(body: bytes) -> Inputs:
    """`{"features": [..]}` (one row), `{"features": [[..], ..]}` or a list of objects (a batch),
    `{"features": {"name": v}}` (one named row); optional `user_id`, `request_id`, `entities`, `params`.

    A one-row body of 20 floats decodes in ~2.5 µs (timeit on the 2-core dev machine; orjson.loads alone
    ~0.5 µs), a 100-row batch in ~110 µs.
    """
    doc = expect_object(loads(body), _PREDICT_EXAMPLE)
    check_fields(doc, _PREDICT_FIELDS, _PREDICT_EXAMPLE)
    if "features" in doc:
        columns, rows, single = _rows(doc["features"], "$.features")
    elif "entities" in doc:  # every feature comes from the feature store
        columns, rows, single = _no_features(doc["entities"])
    else:
        raise error(f"'features' is required: {_PREDICT_EXAMPLE}", "$.features")
    return _with_row_fields(doc, columns, rows, single)


def decode_deployment_predict(body: bytes) -> Inputs:
    """`{"instances": [[..], ..]}` or `[{..}, ..]`, `{"inputs": {"col": [..]}}` or `{"inputs": [[..]]}`;
    optional `user_id`, `request_id` or `request_ids` (one per row), `entities` (one object, or one per
    row), `params`. One unbatched row (`{"instances": [1.5, ..]}`, `{"inputs": {"col": v}}`) is `single`.
    """
    doc = expect_object(loads(body), _DEPLOYMENT_EXAMPLE)
    check_fields(doc, _DEPLOYMENT_FIELDS, _DEPLOYMENT_EXAMPLE)
    if "instances" in doc and "inputs" in doc:
        raise error(f"Give one of 'instances' or 'inputs', not both: {_DEPLOYMENT_EXAMPLE}", "$")
    if "instances" in doc:
        if type(doc["instances"]) is not list:
            raise error(
                f"Expected 'instances' to be an array of rows, got {json_type(doc['instances'])}",
                "$.instances",
            )
        columns, rows, single = _rows(doc["instances"], "$.instances")
    elif "inputs" in doc:
        columns, rows, single = _rows(doc["inputs"], "$.inputs", columnar=True)
    elif "entities" in doc:
        columns, rows, single = _no_features(doc["entities"])
    else:
        raise error(f"Expected 'instances' or 'inputs': {_DEPLOYMENT_EXAMPLE}", "$")
    return _with_row_fields(doc, columns, rows, single)


def _rows(value: Any, where: str, columnar: bool = False) -> Decoded:
    if type(value) is dict:
        if columnar:
            return rows_from_columns(value, where)
        names = check_names(list(value), where)
        row = list(value.values())
        check_values(row, where, None, names)
        return names, [row], True
    if type(value) is not list:
        raise error(f"Expected an array of values or rows, got {json_type(value)}", where)
    if not value:
        raise error("Expected feature values, got an empty array", where)
    first = value[0]
    if type(first) is list:
        return None, rows_from_lists(value, where), False
    if type(first) is dict:
        names, rows = rows_from_records(value, where)
        return names, rows, False
    check_width(len(value), where)
    check_values(value, where)  # a flat array is one row; a nested array inside it is reported here
    return None, [value], True


def _no_features(entities: Any) -> Decoded:
    n = len(entities) if type(entities) is list else 1
    return [], [[] for _ in range(n)], type(entities) is not list


def _with_row_fields(
    doc: dict[str, Any], columns: list[str] | None, rows: list[list[Any]], single: bool
) -> Inputs:
    n = len(rows)
    entity = _entities(doc, n)
    return Inputs(
        columns, rows, _request_ids(doc, n), entity, check_params(doc.get("params"), "$.params"), single
    )


def _request_ids(doc: dict[str, Any], n: int) -> list[str | None]:
    if "request_ids" in doc:
        if "request_id" in doc:
            raise error("Give 'request_id' or 'request_ids', not both", "$.request_ids")
        ids = doc["request_ids"]
        if type(ids) is not list or len(ids) != n:
            raise error(f"Expected 'request_ids' to be an array of {n} ids (one per row)", "$.request_ids")
        return [
            None if rid is None else check_request_id(rid, f"$.request_ids[{i}]") for i, rid in enumerate(ids)
        ]
    rid = doc.get("request_id")
    return [None if rid is None else check_request_id(rid, "$.request_id")] * n


def _entities(doc: dict[str, Any], n: int) -> list[dict[str, Any]]:
    user_id = doc.get("user_id")
    if user_id is not None:
        check_entity_value(user_id, "$.user_id")
    given = doc.get("entities")
    if type(given) is list:
        if len(given) != n:
            raise error(
                f"Expected 'entities' to hold {n} objects (one per row), got {len(given)}", "$.entities"
            )
        return [_with_user(check_entity(e, f"$.entities[{i}]"), user_id) for i, e in enumerate(given)]
    one = {} if given is None else check_entity(given, "$.entities")
    return [_with_user(one, user_id)] * n


def _with_user(entity: dict[str, Any], user_id: Any) -> dict[str, Any]:
    if user_id is None:
        return entity
    if entity.get("user_id", user_id) != user_id:
        raise error("'user_id' and 'entities.user_id' disagree", "$.user_id")
    return {**entity, "user_id": user_id}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def encode_predict(
    predictions: np.ndarray | Sequence[Any],
    probabilities: np.ndarray | Sequence[Sequence[float]] | None,
    *,
    model_version: str | Sequence[str],
    single: bool,
    request_ids: Sequence[str | None] | None = None,
    variants: str | Sequence[str | None] | None = None,
    timestamp: str | None = None,
) -> bytes:
    """`/predict`'s answer: per row `{"prediction", "probability", "model_version", "timestamp"}`
    (plus `variant` and `request_id` when known); one object when `single`, else `{"predictions": [..]}`.

    `model_version` and `variants` are one value for every row or one per row (a batch split by an
    A/B assignment); `probabilities` is None for regressors (`"probability": null`).
    """
    stamp = timestamp or now_iso()
    rows = _row_objects(predictions, probabilities, model_version, variants, request_ids)
    if single:
        return orjson.dumps({**rows[0], "timestamp": stamp})
    return orjson.dumps({"predictions": [{**row, "timestamp": stamp} for row in rows]})


def encode_deployment_predict(
    predictions: np.ndarray | Sequence[Any],
    probabilities: np.ndarray | Sequence[Sequence[float]] | None,
    *,
    deployment: str,
    model: str,
    model_version: str | Sequence[str],
    single: bool,
    request_ids: Sequence[str | None] | None = None,
    variants: str | Sequence[str | None] | None = None,
    timestamp: str | None = None,
) -> bytes:
    """`/api/deployments/{name}/predict`'s answer: the rows of `encode_predict` with `deployment`,
    `model` and `timestamp` beside them: `{..row, "deployment", "model", "timestamp"}` when `single`,
    else `{"deployment", "model", "predictions": [rows], "timestamp"}`.
    """
    stamp = timestamp or now_iso()
    rows = _row_objects(predictions, probabilities, model_version, variants, request_ids)
    head = {"deployment": deployment, "model": model}
    if single:
        return orjson.dumps({**rows[0], **head, "timestamp": stamp})
    return orjson.dumps({**head, "predictions": rows, "timestamp": stamp})


def _row_objects(
    predictions: np.ndarray | Sequence[Any],
    probabilities: np.ndarray | Sequence[Sequence[float]] | None,
    versions: str | Sequence[str],
    variants: str | Sequence[str | None] | None,
    request_ids: Sequence[str | None] | None,
) -> list[dict[str, Any]]:
    labels = to_list(predictions)
    n = len(labels)
    probs = [None] * n if probabilities is None else to_list(probabilities)
    version_of = [versions] * n if isinstance(versions, str) else list(versions)
    variant_of = [variants] * n if variants is None or isinstance(variants, str) else list(variants)
    rows = [
        {"prediction": label, "probability": p, "model_version": v}
        for label, p, v in zip(labels, probs, version_of, strict=True)
    ]
    for row, variant in zip(rows, variant_of, strict=True):
        if variant is not None:
            row["variant"] = variant
    if request_ids is not None:
        for row, rid in zip(rows, request_ids, strict=True):
            if rid is not None:
                row["request_id"] = rid
    return rows


def to_list(values: np.ndarray | Sequence[Any]) -> list[Any]:
    """Model output as JSON-ready Python values (numpy scalars become int/float/str/bool)."""
    if isinstance(values, np.ndarray):
        listed: list[Any] = values.tolist()
        return listed
    return [v.tolist() if isinstance(v, np.ndarray | np.generic) else v for v in values]
