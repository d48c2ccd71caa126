"""Domain errors, each with the MLflow error code its MLflow-API rendering uses."""

from __future__ import annotations

from mlops_kit.errors import BadRequest, Conflict, NotFound


class ExperimentNotFound(NotFound):
    code = "EXPERIMENT_NOT_FOUND"


class RunNotFound(NotFound):
    code = "RUN_NOT_FOUND"


class LoggedModelNotFound(NotFound):
    code = "LOGGED_MODEL_NOT_FOUND"


class ArtifactNotFound(NotFound):
    code = "ARTIFACT_NOT_FOUND"


class ExperimentExists(Conflict):
    code = "EXPERIMENT_EXISTS"


class ParamImmutable(Conflict):
    code = "PARAM_IMMUTABLE"


class InvalidValue(BadRequest):
    code = "INVALID_PARAMETER_VALUE"


class InvalidState(Conflict):
    """The resource is in a state that forbids the change (a deleted run, a finished run)."""

    code = "INVALID_STATE"


# our code -> (MLflow error_code, HTTP status MLflow uses for it)
MLFLOW_CODES: dict[str, tuple[str, int]] = {
    "EXPERIMENT_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    "PARAM_IMMUTABLE": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_STATE": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_FILTER": ("INVALID_PARAMETER_VALUE", 400),
    "VALIDATION_ERROR": ("INVALID_PARAMETER_VALUE", 400),
    # the body MLflow clients fall back on; the status stays the truth
    "METHOD_NOT_ALLOWED": ("ENDPOINT_NOT_FOUND", 405),
}
MLFLOW_STATUS_CODES: dict[int, str] = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_ALREADY_EXISTS",
    413: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
