"""Serving's domain errors: one class per code, rendered by the kit in the platform's shape."""

from mlops_kit.errors import AppError, Conflict, NotFound, ServiceUnavailable, Unprocessable


class DeploymentNotFound(NotFound):
    code = "DEPLOYMENT_NOT_FOUND"


class DeploymentExists(Conflict):
    code = "DEPLOYMENT_EXISTS"


class NoDeployment(NotFound):
    code = "NO_DEPLOYMENT"


class ModelNotLoaded(ServiceUnavailable):
    code = "MODEL_NOT_LOADED"


class DeploymentFailed(Conflict):
    code = "DEPLOYMENT_FAILED"


class InvalidInput(Unprocessable):
    code = "INVALID_INPUT"


class VersionNotServed(InvalidInput):
    code = "VERSION_NOT_SERVED"


class FeaturesUnavailable(ServiceUnavailable):
    code = "FEATURES_UNAVAILABLE"


class FeaturesNotFound(Unprocessable):
    code = "FEATURES_NOT_FOUND"


class RequestNotFound(NotFound):
    code = "REQUEST_NOT_FOUND"


class PeerUnavailable(ServiceUnavailable):
    code = "PEER_UNAVAILABLE"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class LabelsRefused(Unprocessable):
    code = "LABELS_REFUSED"


class EventsRefused(Unprocessable):
    code = "EVENTS_REFUSED"
