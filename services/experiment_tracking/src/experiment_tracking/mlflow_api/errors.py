"""Errors under the MLflow prefixes rendered as MLflow clients expect: {"error_code", "message"}."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from mlops_kit.errors import JsonResponse

from experiment_tracking.errors import MLFLOW_CODES, MLFLOW_STATUS_CODES

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow")


def render(
    request: Request, status: int, code: str, message: str, details: dict[str, Any]
) -> Response | None:
    if not request.url.path.startswith(PREFIXES):
        return None
    if code in MLFLOW_CODES:
        mlflow_code, status = MLFLOW_CODES[code]
    elif code == "NOT_FOUND":
        mlflow_code = "ENDPOINT_NOT_FOUND"
    else:
        mlflow_code = MLFLOW_STATUS_CODES.get(status, "INTERNAL_ERROR")
        if mlflow_code == "RESOURCE_ALREADY_EXISTS":
            status = 400
    body: dict[str, Any] = {"error_code": mlflow_code, "message": message}
    if details:
        body["details"] = details
    return JsonResponse(body, status_code=status)
