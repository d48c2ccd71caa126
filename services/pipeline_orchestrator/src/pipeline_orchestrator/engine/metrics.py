"""The orchestrator's domain metrics, on the service's /metrics beside the RED metrics:

- `mlops_pipeline_runs_finished_total{pipeline,state}`, `mlops_pipeline_attempts_finished_total{kind,state}`
  and `mlops_pipeline_task_duration_seconds{kind,state}` (an attempt's start to its end), counted by
  the replica that recorded the end;
- `mlops_pipeline_attempts_submitted_total{executor}`, `mlops_pipeline_scheduling_pass_seconds`;
- `mlops_pipeline_tasks{state}` (queued, running, up_for_retry: the queue and what runs) and
  `mlops_pipeline_runs{state}` (queued, running, cancelling), read from the database at scrape
  time (cached), so every replica reports the same.
"""

from __future__ import annotations

from mlops_kit.db import Database
from mlops_kit.observability import CachedCollector, Metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from pipeline_orchestrator.tables import Run, RunState, TaskInstance, TaskState

PASS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
ACTIVE_TASKS = (TaskState.QUEUED, TaskState.RUNNING, TaskState.UP_FOR_RETRY)


class EngineMetrics:
    def __init__(self, metrics: Metrics | None):
        self.service = metrics.service if metrics else "pipeline_orchestrator"
        if metrics is None:
            self.enabled = False
            return
        self.enabled = True
        self.runs = metrics.counter(
            "mlops_pipeline_runs_finished_total",
            "Pipeline runs that ended, by pipeline and state",
            ["pipeline", "state"],
        )
        self.attempts = metrics.counter(
            "mlops_pipeline_attempts_finished_total",
            "Task attempts that ended, by task kind and state (lost: the worker died)",
            ["kind", "state"],
        )
        self.submitted = metrics.counter(
            "mlops_pipeline_attempts_submitted_total", "Task attempts handed to the executor", ["executor"]
        )
        self.task_seconds = metrics.histogram(
            "mlops_pipeline_task_duration_seconds",
            "Task attempt durations (start to end), by task kind and state",
            ["kind", "state"],
            buckets=TASK_BUCKETS,
        )
        self.passes = metrics.histogram(
            "mlops_pipeline_scheduling_pass_seconds",
            "Duration of one scheduling pass",
            [],
            buckets=PASS_BUCKETS,
        )

    def run_finished(self, pipeline: str, state: str) -> None:
        if self.enabled:
            self.runs.labels(self.service, pipeline, state).inc()

    def attempt_finished(self, kind: str, state: str, seconds: float | None = None) -> None:
        if self.enabled:
            self.attempts.labels(self.service, kind, state).inc()
            if seconds is not None:
                self.task_seconds.labels(self.service, kind, state).observe(max(0.0, seconds))

    def attempts_submitted(self, executor: str, count: int) -> None:
        if self.enabled and count:
            self.submitted.labels(self.service, executor).inc(count)

    def scheduling_pass(self, seconds: float) -> None:
        if self.enabled:
            self.passes.labels(self.service).observe(seconds)


class QueueCollector(CachedCollector):
    """Tasks and runs by active state, counted in the database (indexed on state)."""

    def __init__(self, db: Database, service: str, cache_seconds: float = 5.0) -> None:
        super().__init__(cache_seconds)
        self.db, self.service = db, service

    def read(self) -> list[Metric]:
        tasks = GaugeMetricFamily(
            "mlops_pipeline_tasks",
            "Task instances queued, running or waiting to retry",
            labels=["service", "state"],
        )
        runs = GaugeMetricFamily(
            "mlops_pipeline_runs", "Runs not finished, by state", labels=["service", "state"]
        )
        with self.db.session(write=False) as session:
            task_counts = dict(
                session.execute(
                    select(TaskInstance.state, func.count())
                    .where(TaskInstance.state.in_(ACTIVE_TASKS))
                    .group_by(TaskInstance.state)
                ).all()
            )
            run_counts = dict(
                session.execute(
                    select(Run.state, func.count()).where(Run.state.in_(RunState.ACTIVE)).group_by(Run.state)
                ).all()
            )
        for state in ACTIVE_TASKS:
            tasks.add_metric([self.service, state], float(task_counts.get(state, 0)))
        for state in RunState.ACTIVE:
            runs.add_metric([self.service, state], float(run_counts.get(state, 0)))
        return [tasks, runs]
