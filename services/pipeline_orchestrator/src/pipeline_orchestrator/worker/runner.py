"""Run one task attempt and say how it went: :func:`execute` is what every executor's worker calls.

Result conventions (``TaskResult``):

- ``ok=True, exit_status=0`` and the task's outputs, always plain JSON values.
- A python exception (task code, an unimportable callable, outputs that are not JSON): ``exit_status=1``,
  ``error`` the traceback (or the reason when there is no useful one).
- A shell command that failed: ``exit_status`` its exit code (``-N`` when killed by signal N),
  ``error`` "command exited with N" and the last lines it printed.
- An http task answered with an unexpected status, or a platform step that failed:
  ``exit_status=1`` (an HTTP status is not an exit status), ``error`` says which status / what failed.
- Timed out (shell and http enforce ``payload.timeout_seconds`` themselves; python code is stopped
  by its executor killing the worker): ``exit_status=-9``, ``error`` "timed out after Xs".
- Cancelled (the heartbeat answered False): ``exit_status=-15``, ``error`` "cancelled".

Everything the task prints (``sys.stdout``, ``sys.stderr``, root logging) goes to the attempt's
log for its duration, between a header and a footer line the runner writes.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pipeline_orchestrator.protocol import TaskPayload, TaskResult
from pipeline_orchestrator.worker.context import LOG_FORMAT, LogSink, TaskContext, TaskFailed

if TYPE_CHECKING:
    from pipeline_orchestrator.settings import OrchestratorSettings

__all__ = [
    "CANCELLED",
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_TIMED_OUT",
    "HEARTBEAT_SECONDS",
    "LogSink",
    "execute",
    "is_cancelled",
    "is_timed_out",
    "jsonable_outputs",
    "kill_active_children",
]

EXIT_ERROR = 1
EXIT_TIMED_OUT = -9
EXIT_CANCELLED = -15
CANCELLED = "cancelled"
HEARTBEAT_SECONDS = 1.0
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS

WORKER_DIR = str(Path(__file__).resolve().parent)
HOSTNAME = socket.gethostname()

Kind = Callable[[TaskContext], dict[str, Any]]
# kind → (module, function, runs in this thread); modules are imported on first use
KINDS: dict[str, tuple[str, str, bool]] = {
    "python": ("pipeline_orchestrator.worker.kind_python", "run_python", True),
    "trial": ("pipeline_orchestrator.worker.kind_python", "run_trial", True),
    "shell": ("pipeline_orchestrator.worker.kind_shell", "run_shell", False),
    "http": ("pipeline_orchestrator.worker.kind_http", "run_http", True),
    "platform": ("pipeline_orchestrator.worker.platform_steps", "run_step", True),
}
_kinds: dict[str, Kind] = {}


def kill_active_children() -> None:
    """Kill the process groups of the shell commands this process is running (call it when the
    worker itself is stopped: they live in their own process groups and would outlive it)."""
    shell = sys.modules.get("pipeline_orchestrator.worker.kind_shell")
    if shell is not None:
        shell.kill_all()


def is_timed_out(result: TaskResult) -> bool:
    return not result.ok and result.exit_status == EXIT_TIMED_OUT


def is_cancelled(result: TaskResult) -> bool:
    return not result.ok and result.error == CANCELLED


def execute(
    payload: TaskPayload,
    *,
    log: LogSink,
    heartbeat: Callable[[], bool] | None = None,
    settings: OrchestratorSettings | None = None,
    heartbeat_interval: float = HEARTBEAT_SECONDS,
) -> TaskResult:
    """Run the attempt described by `payload`; never raises.

    `heartbeat`, if given, is called about every `heartbeat_interval` seconds while the task runs;
    when it returns False the attempt is stopped (a shell command's process group is killed; python
    code cannot be interrupted, its result is discarded) and the result is "cancelled".
    `settings` locate the artifact store (default: ``OrchestratorSettings()`` from the environment).
    """
    started = time.perf_counter()
    where = f"{HOSTNAME}:{os.getpid()}"
    _write(
        log, f"--- {payload.task} attempt {payload.attempt} ({payload.kind}) started {_now()} on {where}\n"
    )
    ctx = TaskContext(payload, log, settings=settings)
    ctx.heartbeat, ctx.heartbeat_interval = heartbeat, heartbeat_interval
    try:
        result = _run(ctx)
    except BaseException as exc:  # the runner's own failure (or an interrupt): still a result
        result = _failure(log, exc, trim=False)
    finally:
        ctx.cleanup()
    state = "succeeded" if result.ok else _failed_state(result)
    took = time.perf_counter() - started
    _write(log, f"--- {payload.task} attempt {payload.attempt} {state} in {took:.3f}s\n")
    with suppress(Exception):
        log.flush()
    return result


def _run(ctx: TaskContext) -> TaskResult:
    kind = ctx.payload.kind
    try:
        run, in_thread = _kind(kind)
    except TaskFailed as exc:
        return _failure(ctx.sink, exc, trim=False)
    monitor = _Monitor(ctx) if in_thread and ctx.heartbeat is not None else None
    try:
        with _captured(ctx.sink), _environ(ctx.payload.env if in_thread else None):
            outputs = run(ctx)
            if ctx.cancelled.is_set():
                raise TaskFailed(CANCELLED, exit_status=EXIT_CANCELLED)
            outputs = jsonable_outputs(outputs)
            if ctx.saved or ctx._artifacts_dir is not None:
                _merge_artifacts(outputs, ctx.upload_left_artifacts())
    except BaseException as exc:
        if ctx.cancelled.is_set() and not isinstance(exc, TaskFailed):
            exc = TaskFailed(CANCELLED, exit_status=EXIT_CANCELLED)
        elif isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else EXIT_ERROR
            exc = TaskFailed(f"the task called sys.exit({exc.code!r})", exit_status=code or EXIT_ERROR)
        return _failure(ctx.sink, exc, trim=kind in ("python", "trial"))
    finally:
        if monitor is not None:
            monitor.stop()
    return TaskResult(ok=True, outputs=outputs, exit_status=0)


def _kind(kind: str) -> tuple[Kind, bool]:
    found = KINDS.get(kind)
    if found is None:
        raise TaskFailed(f"unknown task kind {kind!r}; one of {', '.join(KINDS)}")
    module, name, in_thread = found
    run = _kinds.get(kind)
    if run is None:
        import importlib

        run = _kinds[kind] = getattr(importlib.import_module(module), name)
    return run, in_thread


def _failed_state(result: TaskResult) -> str:
    if is_cancelled(result):
        return "cancelled"
    return "timed out" if is_timed_out(result) else "failed"


def _failure(sink: LogSink, exc: BaseException, *, trim: bool) -> TaskResult:
    if isinstance(exc, TaskFailed):
        if exc.__cause__ is not None:
            _write(sink, "".join(traceback.format_exception(exc.__cause__)))
        _write(sink, f"error: {exc.message}\n")
        return TaskResult(ok=False, outputs=exc.outputs, error=exc.message, exit_status=exc.exit_status)
    text = "".join(traceback.format_exception(_trimmed(exc) if trim else exc))
    _write(sink, text)
    return TaskResult(ok=False, error=text.rstrip("\n"), exit_status=EXIT_ERROR)


def _trimmed(exc: BaseException) -> BaseException:
    """Drop the runner's own frames from the top of a task's traceback, if the task's remain."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(WORKER_DIR):
        tb = tb.tb_next
    return exc.with_traceback(tb) if tb is not None else exc


def _write(sink: LogSink, text: str) -> None:
    with suppress(Exception):  # a broken log must not turn into a lost result
        sink.write(text)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# outputs --------------------------------------------------------------------------------------
def jsonable_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """`outputs` as plain JSON values (numpy values, datetimes, UUIDs converted), or a TaskFailed
    naming the first value that cannot be."""
    if not isinstance(outputs, dict):
        raise TaskFailed(f"outputs must be a dict, not {type(outputs).__name__}")
    try:
        plain: dict[str, Any] = orjson.loads(orjson.dumps(outputs, default=_plain, option=JSON_OPTIONS))
        return plain
    except TypeError as exc:
        where = _unserialisable(outputs, "") or "?"
        raise TaskFailed(f"output {where!r} is not JSON-serialisable: {exc}") from None


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: numpy arrays and scalars (without importing numpy), sets,
    paths, dates of other libraries."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _unserialisable(value: Any, path: str) -> str | None:
    items: Iterator[tuple[Any, Any]]
    if isinstance(value, dict):
        items = iter(value.items())
    elif isinstance(value, list | tuple):
        items = iter(enumerate(value))
    else:
        try:
            orjson.dumps(value, default=_plain, option=JSON_OPTIONS)
        except TypeError:
            return path
        return None
    for key, item in items:
        found = _unserialisable(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _merge_artifacts(outputs: dict[str, Any], found: dict[str, str]) -> None:
    """Uploaded artifacts go to outputs["artifacts"]; names the task returned itself win. When the
    task's own "artifacts" output is not a dict, they go to outputs["artifact_files"] instead."""
    if not found:
        return
    mine = outputs.get("artifacts")
    if mine is None:
        outputs["artifacts"] = found
    elif isinstance(mine, dict):
        outputs["artifacts"] = {**found, **mine}
    else:
        outputs["artifact_files"] = found


# heartbeat ------------------------------------------------------------------------------------
class _Monitor:
    """Calls the heartbeat from a background thread; a False answer sets ``ctx.cancelled``."""

    def __init__(self, ctx: TaskContext):
        self.ctx = ctx
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{ctx.task}", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        beat = self.ctx.heartbeat
        assert beat is not None
        while not self.done.wait(self.ctx.heartbeat_interval):
            try:
                alive = beat()
            except Exception:  # a failed heartbeat is the executor's to judge (lease expiry)
                continue
            if alive is False:
                self.ctx.cancelled.set()
                return

    def stop(self) -> None:
        # not joined: a heartbeat call in flight ends on its own and the thread exits
        self.done.set()


# environment ----------------------------------------------------------------------------------
@contextmanager
def _environ(extra: dict[str, str] | None) -> Iterator[None]:
    """payload.env visible to in-process tasks (and the clients they make) for the attempt."""
    if not extra:
        yield
        return
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update({key: str(value) for key, value in extra.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# output capture -------------------------------------------------------------------------------
# sys.stdout / sys.stderr and the root logger are process-wide. While attempts run they are
# replaced by proxies writing to the log of the attempt running in the calling thread, or, from
# any other thread, to the only running attempt's log (threads a task starts write there too).
_local = threading.local()
_active: list[LogSink] = []
_capture_lock = threading.Lock()
_saved: tuple[Any, Any, list[logging.Handler], int] | None = None


def _current() -> LogSink | None:
    sink: LogSink | None = getattr(_local, "sink", None)
    if sink is not None:
        return sink
    active = _active
    return active[0] if len(active) == 1 else None


class _Stream(io.TextIOBase):
    def __init__(self, original: Any):
        self.original = original

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sink = _current()
        target = sink if sink is not None else self.original
        if target is not None:
            target.write(text)
        return len(text)

    def flush(self) -> None:
        sink = _current()
        target = sink if sink is not None else self.original
        if target is not None:
            target.flush()


class _RootHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current()
        if sink is None:
            for handler in _saved[2] if _saved else ():
                if record.levelno >= handler.level:
                    handler.handle(record)
            return
        try:
            sink.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_root_handler = _RootHandler()


@contextmanager
def _captured(sink: LogSink) -> Iterator[None]:
    global _saved
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    with _capture_lock:
        _active.append(sink)
        if len(_active) == 1:
            root = logging.getLogger()
            _saved = (sys.stdout, sys.stderr, root.handlers, root.level)
            sys.stdout, sys.stderr = _Stream(sys.stdout), _Stream(sys.stderr)
            root.handlers = [_root_handler]
            if root.level > logging.INFO:
                root.setLevel(logging.INFO)
    try:
        yield
    finally:
        _local.sink = previous
        with _capture_lock:
            _active.remove(sink)
            if not _active and _saved is not None:
                root = logging.getLogger()
                sys.stdout, sys.stderr, root.handlers, level = _saved
                if root.level != level:
                    root.setLevel(level)
                _saved = None
