"""The Celery application of the Celery executor: a broker (Redis), one task, no result backend.

Start workers on any machine that reaches the broker and the orchestrator:

    celery -A pipeline_orchestrator.executors.celery_app worker -Q mlops-pipelines -c 4 -n w1@%h

Results travel over the orchestrator's worker API, not through Celery: the task reports
started / logs / heartbeats / finished itself (:func:`pipeline_orchestrator.worker.remote.run_remote`).
Messages are acknowledged late and requeued when a worker process dies, one at a time per child
(prefetch 1); a redelivered message whose attempt is no longer current does nothing (the
orchestrator refuses its ``started`` with 409). A worker that dies while running an attempt is
noticed by the orchestrator when the attempt's lease lapses; it then retries the task as a new
attempt.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init

from pipeline_orchestrator.protocol import TaskPayload
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker.remote import RemoteOptions, kill_descendants, run_remote, warm_up

TASK_NAME = "pipeline_orchestrator.run_attempt"


def make_app(settings: OrchestratorSettings) -> Celery:
    app = Celery("pipeline_orchestrator", broker=settings.celery_broker_url, set_as_current=False)
    app.conf.update(
        result_backend=None,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.celery_queue,
        task_create_missing_queues=True,
        task_routes={TASK_NAME: {"queue": settings.celery_queue}},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.celery_broker_timeout_seconds,
        # the orchestrator retries lost attempts itself; a message unacknowledged this long
        # (its worker died) comes back, and its stale attempt is refused at `started`.
        # Every Redis call is bounded: a frozen broker must not hang the orchestrator's engine.
        broker_transport_options={
            "visibility_timeout": 6 * 3600,
            "socket_timeout": settings.celery_broker_timeout_seconds,
            "socket_connect_timeout": settings.celery_broker_timeout_seconds,
            "retry_on_timeout": False,
        },
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(
        _run_attempt
    )
    return app


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _warm_up_pool_process(**_: Any) -> None:
    warm_up()


def _on_abandon(why: str) -> None:
    # The attempt timed out or was cancelled. The task's child processes (shell commands) are
    # killed now; Python code running in this process is stopped by Celery: the soft time limit
    # raises in it, the hard limit (and revoke(terminate=True) on cancel) kill the pool process.
    kill_descendants(signal.SIGKILL)


def _run_attempt(self: Task, payload: dict[str, Any], lease_seconds: float | None = None) -> None:
    attempt = TaskPayload.from_dict(payload)
    worker = f"{self.request.hostname or 'celery'}:{os.getpid()}"
    run_remote(
        attempt, worker=worker, options=RemoteOptions(lease_seconds=lease_seconds), on_abandon=_on_abandon
    )


app = make_app(OrchestratorSettings())
run_attempt = app.tasks[TASK_NAME]
