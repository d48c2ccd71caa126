"""What the engine hands an executor, and what comes back.

The engine decides *what* runs; an executor decides *where*. Every executor takes a
:class:`TaskPayload` (a task attempt with its inputs already resolved) and reports
:class:`ExecutorEvent` s back to the engine: started, log text, finished with a
:class:`TaskResult`. The worker side of every executor runs the payload with
:func:`pipeline_orchestrator.worker.runner.execute`.

Local workers report through a pipe; remote workers (Celery, Kubernetes) report over HTTP to the
orchestrator's worker API (``/api/workers/attempts/{attempt_id}/...``), presenting
``payload.callback_token``; an attempt that is no longer current (cancelled, or declared lost
after its lease expired) is refused there, so a late worker can never complete it twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class TaskPayload:
    attempt_id: str
    run_id: str
    pipeline: str
    task: str  # the task name; an hpo trial is "<task>[<n>]"
    attempt: int  # 1-based attempt number of this task in this run
    kind: str  # python | shell | http | platform | trial
    spec: dict[str, Any]  # the task's fields with every {{ reference }} resolved
    timeout_seconds: float | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    artifact_prefix: str = ""  # where this attempt's artifacts go in the artifact store
    log_path: str | None = None  # local executor: the worker appends the attempt's log here
    callback_url: str | None = None  # remote executors: the orchestrator's base URL
    callback_token: str | None = None  # remote executors: the attempt's secret for the worker API
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the task

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskPayload:
        return cls(**data)


MAX_ERROR = 65_536


@dataclass
class TaskResult:
    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the traceback (python), or what failed
    exit_status: int | None = None  # 0 on success; a shell command's exit code; -signal when killed

    def __post_init__(self) -> None:
        # a task's output may hold NUL bytes or run long: keep what storage holds, the tail first
        if self.error:
            self.error = self.error.replace("\x00", "\ufffd")[-MAX_ERROR:]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskResult:
        return cls(
            ok=bool(data["ok"]),
            outputs=dict(data.get("outputs") or {}),
            error=data.get("error"),
            exit_status=data.get("exit_status"),
        )


@dataclass
class ExecutorEvent:
    kind: Literal["started", "log", "finished"]
    attempt_id: str
    worker: str | None = None
    text: str | None = None  # kind == "log"
    result: TaskResult | None = None  # kind == "finished"


EventSink = Callable[[ExecutorEvent], None]


class Executor(ABC):
    """Runs task attempts somewhere. ``submit`` never blocks on the task itself."""

    name: str = "executor"
    #: remote executors' workers report over HTTP and keep their attempt's lease alive themselves
    remote: bool = False

    @abstractmethod
    def start(self, sink: EventSink) -> None:
        """Begin accepting work; events are delivered to ``sink`` from any thread."""

    @abstractmethod
    def submit(self, payload: TaskPayload) -> None:
        """Start the attempt (or queue it with the engine's broker)."""

    @abstractmethod
    def cancel(self, attempt_id: str) -> None:
        """Stop the attempt if it is running; no finished event is required afterwards."""

    def reclaim(self) -> None:
        """At start-up, before any attempt is retried: stop what a previous incarnation of this
        orchestrator left running on this machine (local executors; remote workers live on)."""
        return None

    def check(self) -> None:
        """`/ready`: raise if the backend attempts are sent to (a broker) is unreachable. Blocking,
        bounded by the backend client's own timeouts."""
        return None

    def free_slots(self) -> int | None:
        """How many more attempts may be submitted now; None means the backend queues them itself."""
        return None

    def running(self) -> set[str]:
        """Attempt ids this executor knows to be running in this process (local executors only)."""
        return set()

    @abstractmethod
    def stop(self) -> None:
        """Stop accepting work and release workers (local workers are terminated)."""
