"""What a running task sees of its attempt: ids, a logger, a scratch directory and artifacts."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from pipeline_orchestrator.worker import artifacts

if TYPE_CHECKING:
    from mlops_kit.storage import ArtifactStore

    from pipeline_orchestrator.protocol import TaskPayload
    from pipeline_orchestrator.settings import OrchestratorSettings


class LogSink(Protocol):
    """Where an attempt's log goes: a text file opened for append, or a buffer shipped elsewhere."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TaskFailed(Exception):
    """A task failure with a clear reason (no traceback needed in the result's error)."""

    def __init__(self, message: str, *, exit_status: int = 1, outputs: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.exit_status = exit_status
        self.outputs = outputs or {}


class _SinkHandler(logging.Handler):
    def __init__(self, sink: LogSink):
        super().__init__()
        self.sink = sink
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class TaskContext:
    """Passed to a python task (or hpo objective) that declares a ``context`` parameter.

    >>> def train(data_uri: str, context: TaskContext) -> dict:
    ...     frame = pd.read_parquet(context.artifact_path(data_uri))
    ...     joblib.dump(model, context.artifacts_dir / "model.joblib")   # uploaded after success
    ...     context.log.info("trained on %d rows", len(frame))
    ...     return {"accuracy": 0.93}

    Files left in :attr:`artifacts_dir` when the task succeeds are uploaded and listed in its
    outputs under ``"artifacts"`` (relative name → URI), as are those given to
    :meth:`save_artifact`.
    """

    def __init__(
        self,
        payload: TaskPayload,
        sink: LogSink,
        *,
        settings: OrchestratorSettings | None = None,
    ):
        self.payload = payload
        self.run_id = payload.run_id
        self.pipeline = payload.pipeline
        self.task = payload.task
        self.attempt = payload.attempt
        self.sink = sink
        self.settings = settings
        self.prefix = artifacts.attempt_prefix(
            payload.run_id, payload.task, payload.attempt, payload.artifact_prefix
        )
        #: set when the orchestrator asked the attempt to stop; long loops may check it
        self.cancelled = threading.Event()
        #: the tracking run of an hpo trial (an ``mlops_client.ActiveRun``), else None
        self.tracking_run: Any = None
        #: set by the runner: returns False when the attempt must stop (checked every interval)
        self.heartbeat: Callable[[], bool] | None = None
        self.heartbeat_interval = 1.0
        self.saved: dict[str, str] = {}
        self._workdir: Path | None = None
        self._artifacts_dir: Path | None = None
        self._log: logging.Logger | None = None
        self._store: ArtifactStore | None = None

    # lazily made: a task that never asks pays nothing -------------------------------------------
    @property
    def workdir(self) -> Path:
        """A private temporary directory of this attempt, removed when it ends."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="mlops-task-"))
        return self._workdir

    @property
    def artifacts_dir(self) -> Path:
        """A fresh empty directory; what the task leaves here is uploaded when it succeeds."""
        if self._artifacts_dir is None:
            self._artifacts_dir = self.workdir / "artifacts"
            self._artifacts_dir.mkdir()
        return self._artifacts_dir

    @property
    def log(self) -> logging.Logger:
        """A logger writing to this attempt's log."""
        if self._log is None:
            # not registered with logging's manager, so attempts do not accumulate loggers
            logger = logging.Logger(f"task.{self.task}", logging.DEBUG)
            logger.addHandler(_SinkHandler(self.sink))
            logger.propagate = False
            self._log = logger
        return self._log

    @property
    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = artifacts.get_store(self.settings)
        return self._store

    # artifacts -------------------------------------------------------------------------------
    def save_artifact(self, name: str, data: bytes | str | os.PathLike[str] | IO[Any]) -> str:
        """Store `data` (bytes, a file path, or an open file) as this attempt's artifact `name`
        (may contain '/'); returns its ``mlops-artifacts://`` URI."""
        key = artifacts.check_key(self.prefix + name.lstrip("/"))
        if isinstance(data, bytes | bytearray | memoryview):
            found = artifacts.put_bytes(self.store, key, bytes(data))
        elif isinstance(data, str | os.PathLike):
            found = artifacts.put(self.store, key, Path(data))
        elif hasattr(data, "read"):
            found = artifacts.put_stream(self.store, key, data)
        else:
            raise TypeError(f"save_artifact takes bytes, a path or a file, not {type(data).__name__}")
        self.saved[name] = found
        return found

    def artifact_path(self, uri_or_path: str | os.PathLike[str]) -> Path:
        """A local file holding an artifact (downloaded for remote stores; for a local store the
        stored file itself, to be read, not changed). A plain path is returned as it is."""
        if not artifacts.is_uri(uri_or_path):
            return Path(uri_or_path)
        return artifacts.fetch(self.store, str(uri_or_path), self.workdir / "downloads")

    @contextmanager
    def open_artifact(self, uri_or_path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
        """``with context.open_artifact(uri) as fh:`` the artifact's bytes."""
        with open(self.artifact_path(uri_or_path), "rb") as fh:
            yield fh

    def uri_of(self, name: str) -> str:
        """The URI an artifact `name` of this attempt has (or will have once uploaded)."""
        return artifacts.uri(artifacts.check_key(self.prefix + name.lstrip("/")))

    def upload_left_artifacts(self) -> dict[str, str]:
        """Upload what was left in :attr:`artifacts_dir`; name → URI, with :meth:`save_artifact` ones."""
        found = dict(self.saved)
        if self._artifacts_dir is not None:
            found.update(artifacts.upload_dir(self.store, self._artifacts_dir, self.prefix))
        return found

    def cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = self._artifacts_dir = None
        if self._log is not None:
            for handler in self._log.handlers:
                handler.close()
