"""The ``fetch_training_data`` step: a point-in-time correct training set from the feature store,
stored as an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline_orchestrator.worker import artifacts
from pipeline_orchestrator.worker.context import TaskContext, TaskFailed
from pipeline_orchestrator.worker.platform_steps.clients import feature_store_client


def fetch_training_data(ctx: TaskContext, inputs: dict[str, Any]) -> dict[str, Any]:
    if (inputs.get("entities") is None) == (inputs.get("entity_uri") is None):
        raise TaskFailed("fetch_training_data: give either entities (rows) or entity_uri")
    if (inputs.get("features") is None) == (inputs.get("feature_service") is None):
        raise TaskFailed("fetch_training_data: give either features or feature_service")
    features = inputs.get("features")
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    service = inputs.get("feature_service")
    fmt = str(inputs.get("format") or "parquet")
    if fmt not in ("parquet", "json"):
        raise TaskFailed(f"fetch_training_data: format is 'parquet' or 'json', not {fmt!r}")
    entities = _entities(ctx, inputs)
    name = str(inputs.get("name") or "training_data")
    client = feature_store_client()
    if fmt == "parquet":
        target = ctx.workdir / f"{name}.parquet"
        client.historical(entities, features=features, feature_service=service, out_path=target)
        rows, columns = _parquet_shape(target)
        uri = artifacts.put(ctx.store, ctx.prefix + target.name, target, consume=True)
    else:
        result = client.historical(entities, features=features, feature_service=service)
        rows, columns = len(result.rows), result.columns
        uri = artifacts.put_bytes(ctx.store, ctx.prefix + f"{name}.json", orjson.dumps(result.records()))
    refs = features or []
    return {
        "dataset_uri": uri,
        "rows": rows,
        "columns": columns,
        "format": fmt,
        "features": refs,
        "feature_service": service,
        "feature_sets": sorted({str(r).split(":", 1)[0] for r in refs if ":" in str(r)}),
    }


def _entities(ctx: TaskContext, inputs: dict[str, Any]) -> Any:
    rows = inputs.get("entities")
    if rows is not None:
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TaskFailed("fetch_training_data: entities must be a list of rows (objects)")
        return rows
    path = ctx.artifact_path(str(inputs["entity_uri"]))
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        return path
    if suffix == ".jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if suffix == ".json":
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict) and "columns" in data and "rows" in data:
            return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]
        if isinstance(data, dict) and "rows" in data:
            data = data["rows"]
        if isinstance(data, list):
            return data
    raise TaskFailed(
        f"fetch_training_data: {inputs['entity_uri']} is not entity rows "
        "(a .parquet, .csv, .jsonl or .json list of rows)"
    )


def _parquet_shape(path: Path) -> tuple[int | None, list[str] | None]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # the dataset is stored either way; its shape is a convenience
        return None, None
    metadata = pq.read_metadata(path)
    return metadata.num_rows, list(metadata.schema.to_arrow_schema().names)
