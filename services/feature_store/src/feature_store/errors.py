"""Feature store errors: each names what was not found or what did not fit."""

from __future__ import annotations

from mlops_kit.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unprocessable


class EntityNotFound(NotFound):
    code = "ENTITY_NOT_FOUND"


class FeatureSetNotFound(NotFound):
    code = "FEATURE_SET_NOT_FOUND"


class FeatureNotFound(NotFound):
    code = "FEATURE_NOT_FOUND"


class FeatureServiceNotFound(NotFound):
    code = "FEATURE_SERVICE_NOT_FOUND"


class JobNotFound(NotFound):
    code = "JOB_NOT_FOUND"


class AlreadyExists(Conflict):
    code = "ALREADY_EXISTS"


class BreakingSchemaChange(Conflict):
    """Removing a feature or changing its type without asking for a breaking version."""

    code = "BREAKING_SCHEMA_CHANGE"


class InUse(Conflict):
    code = "IN_USE"


class InvalidRequest(BadRequest):
    code = "INVALID_REQUEST"


class TypeMismatch(Unprocessable):
    """A value that does not fit its feature's type: details name the row and the column."""

    code = "TYPE_MISMATCH"


class TooManyEntities(InvalidRequest):
    code = "TOO_MANY_ENTITIES"


class InvalidBody(BadRequest):
    """A CSV or Parquet body that does not parse."""

    code = "INVALID_BODY"


class UnsupportedMediaType(BadRequest):
    code = "UNSUPPORTED_MEDIA_TYPE"


class OnlineStoreUnavailable(ServiceUnavailable):
    code = "ONLINE_STORE_UNAVAILABLE"


class OnlineWriteFailed(ServiceUnavailable):
    """Rows kept in the offline store; the online store failed to take them."""

    code = "ONLINE_WRITE_FAILED"


class OnlineDeleteFailed(ServiceUnavailable):
    """The feature set is deleted; the online store failed to drop its values."""

    code = "ONLINE_DELETE_FAILED"
