"""The orchestrator's domain metrics, on the service's /metrics beside the RED metrics."""

from __future__ import annotations

from mlops_kit.observability import Metrics

PASS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
        self.passes = metrics.histogram(
            "mlops_pipeline_scheduling_pass_seconds",
            "Duration of one scheduling pass",
            [],
            buckets=PASS_BUCKETS,
        )

    def run_finished(self, pipeline: str, state: str) -> None:
        if self.enabled:
            self.runs.labels(self.service, pipeline, state).inc()

    def attempt_finished(self, kind: str, state: str) -> None:
        if self.enabled:
            self.attempts.labels(self.service, kind, state).inc()

    def attempts_submitted(self, executor: str, count: int) -> None:
        if self.enabled and count:
            self.submitted.labels(self.service, executor).inc(count)

    def scheduling_pass(self, seconds: float) -> None:
        if self.enabled:
            self.passes.labels(self.service).observe(seconds)
