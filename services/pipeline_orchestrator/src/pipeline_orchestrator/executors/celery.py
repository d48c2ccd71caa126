"""Celery executor: each attempt is a message on the broker; any Celery worker on the queue runs it.

The workers report back over the orchestrator's worker API (started, logs, heartbeats,
finished), so this executor only sends and revokes messages. The broker queues attempts, so
:meth:`free_slots` is None: concurrency is the workers' ``-c``.
"""

from __future__ import annotations

import logging
import math
import threading

from celery import Celery

from pipeline_orchestrator.protocol import EventSink, Executor, TaskPayload
from pipeline_orchestrator.settings import OrchestratorSettings

log = logging.getLogger("mlops.pipeline_orchestrator.executors.celery")

TASK_NAME = "pipeline_orchestrator.run_attempt"
#: after an attempt's timeout the worker reports it timed out; Celery then raises in the task
#: (soft limit) and, if the task is still stuck, kills the pool process (hard limit)
SOFT_LIMIT_GRACE_SECONDS = 5
HARD_LIMIT_GRACE_SECONDS = 15


def time_limits(timeout_seconds: float | None) -> dict[str, int]:
    """Celery's per-call limits for an attempt's timeout (none without one)."""
    if not timeout_seconds:
        return {}
    base = math.ceil(float(timeout_seconds))
    return {
        "soft_time_limit": base + SOFT_LIMIT_GRACE_SECONDS,
        "time_limit": base + HARD_LIMIT_GRACE_SECONDS,
    }


class CeleryExecutor(Executor):
    name = "celery"
    remote = True

    def __init__(self, settings: OrchestratorSettings, *, app: Celery | None = None):
        self.settings = settings
        if app is None:
            from pipeline_orchestrator.executors.celery_app import make_app

            app = make_app(settings)
        self.app = app
        self._sink: EventSink | None = None

    def start(self, sink: EventSink) -> None:
        self._sink = sink  # workers report over HTTP; nothing arrives through the sink
        # connect to the broker now, off the event loop: the first send would otherwise pay
        # for the connection and kombu's transport imports (about a second)
        threading.Thread(target=self._warm_up, name="celery-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            with self.app.producer_or_acquire() as producer:
                producer.connection.ensure_connection(max_retries=3)
        except Exception as exc:
            log.warning("the Celery broker %s is not reachable yet: %s", self._broker_name(), exc)

    def check(self) -> None:
        """One round trip to the broker (a Redis PING), within the broker timeout."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=self.settings.celery_broker_timeout_seconds)
            client = getattr(connection.default_channel, "client", None)
            if client is not None:  # Redis transport: connecting alone does not prove it answers
                client.ping()

    def _broker_name(self) -> str:
        try:
            return str(self.app.connection_for_write().as_uri())  # the password masked
        except Exception:
            return "?"

    def submit(self, payload: TaskPayload) -> None:
        if not payload.callback_url or not payload.callback_token:
            raise ValueError("a Celery attempt needs payload.callback_url and payload.callback_token")
        self.app.send_task(
            TASK_NAME,
            args=[payload.to_dict()],
            kwargs={"lease_seconds": self.settings.lease_seconds},
            task_id=payload.attempt_id,
            queue=self.settings.celery_queue,
            **time_limits(payload.timeout_seconds),
        )

    def cancel(self, attempt_id: str) -> None:
        # a queued message is discarded when it arrives; a running one has its pool process
        # killed. Workers that miss the broadcast stop at their next heartbeat ({"continue": false}).
        try:
            self.app.control.revoke(attempt_id, terminate=True, signal="SIGKILL")
        except Exception:
            log.exception("revoking attempt %s failed; its worker stops at its next heartbeat", attempt_id)

    def free_slots(self) -> int | None:
        return None

    def stop(self) -> None:
        try:
            self.app.close()
        except Exception:  # pragma: no cover - best effort at shutdown
            log.debug("closing the Celery app failed", exc_info=True)
