"""The orchestrator's domain errors: one class per code, rendered by the kit's one handler."""

from __future__ import annotations

from mlops_kit.errors import Conflict, Forbidden, NotFound, Unprocessable

# pipelines and their definitions


class PipelineNotFound(NotFound):
    code = "PIPELINE_NOT_FOUND"


class PipelineVersionNotFound(NotFound):
    code = "PIPELINE_VERSION_NOT_FOUND"


class PipelineHasActiveRuns(Conflict):
    code = "PIPELINE_HAS_ACTIVE_RUNS"


class PipelineDefinitionError(Unprocessable):
    code = "INVALID_PIPELINE"


class DuplicateTask(PipelineDefinitionError):
    code = "DUPLICATE_TASK"


class UnknownDependency(PipelineDefinitionError):
    code = "UNKNOWN_DEPENDENCY"


class TaskCycle(PipelineDefinitionError):
    code = "CYCLE"


class ReferenceInCode(PipelineDefinitionError):
    code = "REFERENCE_IN_CODE"


class DuplicateParameter(PipelineDefinitionError):
    code = "DUPLICATE_PARAMETER"


class InvalidReference(PipelineDefinitionError):
    code = "INVALID_REFERENCE"


class UnknownParameterReference(PipelineDefinitionError):
    code = "UNKNOWN_PARAMETER"


class UnknownTaskReference(PipelineDefinitionError):
    code = "UNKNOWN_TASK_REFERENCE"


class ReferenceNotUpstream(PipelineDefinitionError):
    code = "REFERENCE_NOT_UPSTREAM"


# parameters given to a run


class ParameterTypeError(Unprocessable):
    code = "PARAMETER_TYPE_ERROR"


class UnknownParameter(Unprocessable):
    code = "UNKNOWN_PARAMETER"


class MissingParameter(Unprocessable):
    code = "MISSING_PARAMETER"


# runs, tasks and attempts


class RunNotFound(NotFound):
    code = "RUN_NOT_FOUND"


class AmbiguousRunId(Conflict):
    code = "AMBIGUOUS_RUN_ID"


class RunFinished(Conflict):
    code = "RUN_FINISHED"


class RunNotRetryable(Conflict):
    code = "RUN_NOT_RETRYABLE"


class TaskNotFound(NotFound):
    code = "TASK_NOT_FOUND"


class AttemptNotFound(NotFound):
    code = "ATTEMPT_NOT_FOUND"


class BadAttemptToken(Forbidden):
    code = "BAD_ATTEMPT_TOKEN"


class AttemptNotCurrent(Conflict):
    code = "ATTEMPT_NOT_CURRENT"


# schedules, backfills and triggers


class InvalidTimezone(Unprocessable):
    code = "INVALID_TIMEZONE"


class InvalidCron(Unprocessable):
    code = "INVALID_CRON"


class CronRequired(Unprocessable):
    code = "CRON_REQUIRED"


class InvalidRange(Unprocessable):
    code = "INVALID_RANGE"


class BackfillTooLarge(Unprocessable):
    code = "BACKFILL_TOO_LARGE"


class ScheduleNotFound(NotFound):
    code = "SCHEDULE_NOT_FOUND"


class WebhookNotFound(NotFound):
    code = "WEBHOOK_NOT_FOUND"


class AlertRouteNotFound(NotFound):
    code = "ALERT_ROUTE_NOT_FOUND"


# retraining policies


class RetrainingPolicyNotFound(NotFound):
    code = "RETRAINING_POLICY_NOT_FOUND"


class InvalidRetrainingPolicy(Unprocessable):
    code = "INVALID_RETRAINING_POLICY"


class EvaluationInProgress(Conflict):
    code = "EVALUATION_IN_PROGRESS"


# artifacts


class ArtifactNotFound(NotFound):
    code = "ARTIFACT_NOT_FOUND"


class InvalidArtifactUri(Unprocessable):
    code = "INVALID_ARTIFACT_URI"


class EmptyUpload(Unprocessable):
    code = "EMPTY_UPLOAD"
