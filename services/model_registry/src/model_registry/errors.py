from mlops_kit.errors import AppError, Conflict, Forbidden, NotFound, ServiceUnavailable, Unprocessable


class ModelNotFound(NotFound):
    code = "MODEL_NOT_FOUND"


class ModelVersionNotFound(NotFound):
    code = "MODEL_VERSION_NOT_FOUND"


class AliasNotFound(NotFound):
    code = "ALIAS_NOT_FOUND"


class ArtifactNotFound(NotFound):
    code = "ARTIFACT_NOT_FOUND"


class ModelVersionExists(Conflict):
    code = "MODEL_VERSION_EXISTS"


class ArtifactExists(Conflict):
    code = "ARTIFACT_EXISTS"


class NothingToRollBack(Conflict):
    code = "NOTHING_TO_ROLL_BACK"


class InvalidFilter(Unprocessable):
    code = "INVALID_FILTER"


class InvalidName(Unprocessable):
    code = "INVALID_NAME"


class ReferenceNotFound(NotFound):
    code = "REFERENCE_NOT_FOUND"


class InvalidReferenceData(Unprocessable):
    code = "INVALID_REFERENCE_DATA"


class ColumnTypeMismatch(Unprocessable):
    code = "COLUMN_TYPE_MISMATCH"


class UnknownVersion(Unprocessable):
    code = "UNKNOWN_VERSION"


class InvalidMonitoringQuery(Unprocessable):
    code = "INVALID_MONITORING_QUERY"


class InvalidReferenceSource(Unprocessable):
    code = "INVALID_REFERENCE_SOURCE"


class SourceNotFound(NotFound):
    code = "SOURCE_NOT_FOUND"


class SourceForbidden(Forbidden):
    code = "SOURCE_FORBIDDEN"


class SourceFailed(AppError):
    """The peer service holding reference data answered with an error of its own."""

    status_code = 502
    code = "SOURCE_FAILED"


class SourceUnavailable(ServiceUnavailable):
    code = "SOURCE_UNAVAILABLE"


class MonitoringNotConfigured(NotFound):
    code = "MONITORING_NOT_CONFIGURED"


class InvalidMonitoringConfig(Unprocessable):
    code = "INVALID_MONITORING_CONFIG"


class EvaluationInProgress(Conflict):
    code = "EVALUATION_IN_PROGRESS"


class VariantFilterUnavailable(Unprocessable):
    """The window reaches hours already rolled up, where the raw log a variant filter reads is gone."""

    code = "VARIANT_FILTER_UNAVAILABLE"


class InvalidDriftConfig(Unprocessable):
    code = "INVALID_DRIFT_CONFIG"


class InvalidPerformanceInput(Unprocessable):
    code = "INVALID_PERFORMANCE_INPUT"


class MetadataRequired(Unprocessable):
    code = "METADATA_REQUIRED"


class ChecksumMismatch(Unprocessable):
    code = "CHECKSUM_MISMATCH"


class InvalidPath(Unprocessable):
    code = "INVALID_PATH"


class InvalidAlias(Unprocessable):
    code = "INVALID_ALIAS"
