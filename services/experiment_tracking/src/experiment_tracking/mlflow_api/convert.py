"""Our records in the MLflow REST API's JSON shapes (protobuf JSON: empty fields left out)."""

from __future__ import annotations

from typing import Any

from experiment_tracking.values import json_number


def pairs(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def experiment(exp: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in exp.items() if k != "tags"}
    if exp["tags"]:
        out["tags"] = pairs(exp["tags"])
    return out


def run_info(run: dict[str, Any]) -> dict[str, Any]:
    info = {
        "run_uuid": run["id"],
        "run_id": run["id"],
        "run_name": run["name"],
        "experiment_id": str(run["experiment_id"]),
        "user_id": run["user_id"],
        "status": run["status"],
        "start_time": run["start_time"],
        "artifact_uri": run["artifact_uri"],
        "lifecycle_stage": run["lifecycle_stage"],
    }
    if run["end_time"] is not None:
        info["end_time"] = run["end_time"]
    return info


def metric(m: dict[str, Any]) -> dict[str, Any]:
    return {"key": m["key"], "value": json_number(m["value"]), "timestamp": m["timestamp"], "step": m["step"]}


def _dataset_input(row: Any) -> dict[str, Any]:
    name, digest, source_type, source, schema, profile, tags = row
    dataset = {"name": name, "digest": digest, "source_type": source_type, "source": source}
    if schema:
        dataset["schema"] = schema
    if profile:
        dataset["profile"] = profile
    return {"tags": pairs(tags or {}), "dataset": dataset}


def run(r: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if r["metrics"]:
        data["metrics"] = [metric(m) for m in r["metrics"]]
    if r["params"]:
        data["params"] = pairs(r["params"])
    if r["tags"]:
        data["tags"] = pairs(r["tags"])
    out: dict[str, Any] = {"info": run_info(r), "data": data}
    out["inputs"] = {"dataset_inputs": [_dataset_input(d) for d in r["datasets"]]} if r["datasets"] else {}
    if r["outputs"]:
        out["outputs"] = {"model_outputs": [{"model_id": m, "step": s} for m, s in r["outputs"]]}
    return out


def logged_model(row: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": row["id"],
        "experiment_id": str(row["experiment_id"]),
        "name": row["name"],
        "creation_timestamp_ms": row["creation_time"],
        "last_updated_timestamp_ms": row["last_update_time"],
        "artifact_uri": row["artifact_location"],
        "status": row["status"],
        "tags": pairs(row["tags"]),
    }
    for field in ("model_type", "source_run_id", "status_message"):
        if row.get(field):
            info[field] = row[field]
    return {"info": info, "data": {"params": pairs(row["params"])}}
