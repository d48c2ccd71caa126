"""The orchestrator's domain errors: one class per code, rendered by the kit's one handler."""

from __future__ import annotations

from mlops_kit.errors import Conflict, NotFound, Unprocessable


class RetrainingPolicyNotFound(NotFound):
    code = "RETRAINING_POLICY_NOT_FOUND"


class InvalidRetrainingPolicy(Unprocessable):
    code = "INVALID_RETRAINING_POLICY"


class EvaluationInProgress(Conflict):
    code = "EVALUATION_IN_PROGRESS"


class ArtifactNotFound(NotFound):
    code = "ARTIFACT_NOT_FOUND"


class InvalidArtifactUri(Unprocessable):
    code = "INVALID_ARTIFACT_URI"
