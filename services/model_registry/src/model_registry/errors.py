from mlops_kit.errors import Conflict, NotFound, Unprocessable


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
