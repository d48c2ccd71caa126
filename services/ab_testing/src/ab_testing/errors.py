"""The A/B testing service's error catalogue: one class per code, rendered by the kit's handler."""

from mlops_kit.errors import BadRequest, Conflict, NotFound, ServiceUnavailable, Unprocessable


class ExperimentNotFound(NotFound):
    code = "EXPERIMENT_NOT_FOUND"


class PhaseNotFound(NotFound):
    code = "PHASE_NOT_FOUND"


class ExperimentExists(Conflict):
    code = "EXPERIMENT_EXISTS"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


class ExperimentArchived(Conflict):
    code = "EXPERIMENT_ARCHIVED"


class NoWinner(Conflict):
    code = "NO_WINNER"


class NotARollout(Conflict):
    code = "NOT_A_ROLLOUT"


class DecisionInProgress(Conflict):
    code = "DECISION_IN_PROGRESS"


class PromotionAbandoned(Conflict):
    code = "PROMOTION_ABANDONED"


class InvalidVariants(Unprocessable):
    code = "INVALID_VARIANTS"


class UnknownVariant(Unprocessable):
    code = "UNKNOWN_VARIANT"


class UnknownMetric(Unprocessable):
    code = "UNKNOWN_METRIC"


class MissingValue(Unprocessable):
    code = "MISSING_VALUE"


class ExperimentNotCollecting(Unprocessable):
    code = "EXPERIMENT_NOT_COLLECTING"


class NoModelName(Unprocessable):
    code = "NO_MODEL_NAME"


class NoModelVersion(Unprocessable):
    code = "NO_MODEL_VERSION"


class RegistryRejected(Unprocessable):
    code = "REGISTRY_REJECTED"


class RegistryUnavailable(ServiceUnavailable):
    code = "REGISTRY_UNAVAILABLE"


class InvalidBaseline(Unprocessable):
    code = "INVALID_BASELINE"


class StdRequired(Unprocessable):
    code = "STD_REQUIRED"


class InvalidPowerInput(Unprocessable):
    code = "INVALID_POWER_INPUT"


class BatchTooLarge(BadRequest):
    code = "BATCH_TOO_LARGE"


class InvalidBody(BadRequest):
    code = "INVALID_BODY"
