"""Client for experiment tracking (:8003): experiments, runs, params, metric histories, run artifacts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mlops_client.config import service_url
from mlops_client.errors import MlopsError
from mlops_client.registry import Progress
from mlops_client.tracking_artifacts import ArtifactsMixin
from mlops_client.tracking_common import HISTORY_FALLBACK_LIMIT, METRICS_PER_REQUEST, PARAMS_PER_REQUEST
from mlops_client.tracking_experiments import ExperimentsMixin
from mlops_client.tracking_metrics import MetricsMixin
from mlops_client.tracking_models import (
    ArtifactFile,
    Dataset,
    Experiment,
    LatestMetric,
    Metric,
    MetricPoint,
    Run,
    RunComparison,
    RunSource,
    TokenPage,
    UploadedArtifact,
)
from mlops_client.tracking_runs import RunsMixin

__all__ = [
    "HISTORY_FALLBACK_LIMIT",
    "METRICS_PER_REQUEST",
    "PARAMS_PER_REQUEST",
    "ActiveRun",
    "ArtifactFile",
    "Dataset",
    "Experiment",
    "LatestMetric",
    "Metric",
    "MetricPoint",
    "Run",
    "RunComparison",
    "RunSource",
    "TokenPage",
    "TrackingClient",
    "UploadedArtifact",
]


class TrackingClient(ExperimentsMixin, RunsMixin, MetricsMixin, ArtifactsMixin):
    """Experiments, runs, params, metrics and run artifacts.

    >>> with TrackingClient() as tracking:        # MLOPS_EXPERIMENT_TRACKING_URL, MLOPS_API_KEY
    ...     with tracking.start_run(experiment="churn", parameters={"depth": 6}) as run:
    ...         run.log_metrics({"auc": 0.91}, step=1)
    ...         run.log_artifact("model.pkl")

    Only idempotent calls are retried (GETs, DELETEs, artifact PUTs, the read-only run search).
    Logging metrics, params and tags are POSTs and are sent once: a retry after a lost answer
    could log the same points twice.
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("experiment_tracking"), **kwargs)

    # a run started here is handed back as an ActiveRun, so this lives with the composed client
    def start_run(
        self,
        experiment: str | None = None,
        *,
        experiment_id: str | None = None,
        run_name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        source: RunSource | Mapping[str, str] | None = None,
        environment: Mapping[str, Any] | None = None,
        datasets: Sequence[Dataset | Mapping[str, Any]] | None = None,
    ) -> ActiveRun:
        """Start a run in `experiment` (a name; created if missing) or `experiment_id`.

        Use it as a context manager: the run ends FINISHED when the block completes, FAILED when it
        raises (KILLED on KeyboardInterrupt). Without `with`, call `run.end()` yourself.
        """
        if (experiment is None) == (experiment_id is None):
            raise ValueError("give either experiment (a name) or experiment_id")
        target = experiment_id or self.get_or_create_experiment(str(experiment)).id
        run = self.create_run(
            target,
            run_name=run_name,
            parameters=parameters,
            tags=tags,
            description=description,
            parent_run_id=parent_run_id,
            user_id=user_id,
            source=source,
            environment=environment,
            datasets=datasets,
        )
        return ActiveRun(self, run)


class ActiveRun:
    """A run being logged to. As a context manager it ends FINISHED, or FAILED if the block raises.

    >>> with tracking.start_run(experiment="churn", run_name="xgb", parameters={"depth": 6}) as run:
    ...     for epoch in range(10):
    ...         run.log_metrics({"loss": train(epoch)}, step=epoch)
    """

    def __init__(self, client: TrackingClient, run: Run):
        self.client = client
        self.info = run  # as the service last answered; metrics are current after refresh()
        self.ended = False

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def experiment_id(self) -> str:
        return self.info.experiment_id

    def log_metric(self, key: str, value: float, *, step: int = 0, timestamp: int | None = None) -> None:
        self.client.log_metrics(self.experiment_id, self.id, {key: value}, step=step, timestamp=timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], *, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.client.log_metrics(self.experiment_id, self.id, metrics, step=step, timestamp=timestamp)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.info = self.client.log_params(self.experiment_id, self.id, params)

    def set_tag(self, key: str, value: str) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.info = self.client.set_tags(self.experiment_id, self.id, tags)

    def log_artifact(
        self, path: str | Path, *, artifact_path: str | None = None, progress: Progress | None = None
    ) -> list[UploadedArtifact]:
        return self.client.upload_artifact(
            self.experiment_id, self.id, path, artifact_path=artifact_path, progress=progress
        )

    def start_child_run(self, *, run_name: str | None = None, **fields: Any) -> ActiveRun:
        """A nested run in the same experiment (`fields` as for `TrackingClient.start_run`)."""
        return self.client.start_run(
            experiment_id=self.experiment_id, run_name=run_name, parent_run_id=self.id, **fields
        )

    def refresh(self) -> Run:
        self.info = self.client.get_run(self.experiment_id, self.id)
        return self.info

    def end(self, status: str = "FINISHED") -> Run:
        self.info = self.client.end_run(self.experiment_id, self.id, status)
        self.ended = True
        return self.info

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.ended:
            return
        if exc is None:
            self.end("FINISHED")
            return
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            self.end(status)
        except MlopsError as failure:  # never hide the block's own exception behind this one
            exc.add_note(f"run {self.id} could not be marked {status}: {failure}")
