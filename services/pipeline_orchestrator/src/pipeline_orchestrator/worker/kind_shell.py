"""``shell`` tasks: a command in its own process group, its output streamed to the log.

The command sees ``MLOPS_TASK_OUTPUTS`` (a file where it may write a JSON object of outputs),
``MLOPS_ARTIFACTS_DIR`` (files left there are uploaded as artifacts), ``MLOPS_RUN_ID``,
``MLOPS_PIPELINE``, ``MLOPS_TASK_NAME`` and ``MLOPS_TASK_ATTEMPT``, on top of the worker's
environment, the task's ``env`` and the payload's ``env``.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import threading
import time
from typing import IO, Any

import orjson

from pipeline_orchestrator.worker import lifetime
from pipeline_orchestrator.worker.context import LogSink, TaskContext, TaskFailed
from pipeline_orchestrator.worker.runner import CANCELLED, EXIT_CANCELLED, EXIT_TIMED_OUT

TAIL_LINES = 20
TAIL_CHARS = 8192
CANCEL_GRACE_SECONDS = 5.0  # SIGTERM, then SIGKILL
PIPE_GRACE_SECONDS = 1.0  # how long processes left behind may keep the output open

# commands running in this process: their groups are killed with the worker (kill_all)
_running: set[subprocess.Popen[bytes]] = set()


class _Output:
    """Copies the command's output to the log as it comes, keeping the end for error messages."""

    def __init__(self, stream: IO[bytes], sink: LogSink):
        self.stream, self.sink = stream, sink
        self.tail = ""
        self.thread = threading.Thread(target=self._pump, name="shell-output", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        read = getattr(self.stream, "read1", self.stream.read)
        while chunk := read(65536):
            self._emit(decoder.decode(chunk))
        self._emit(decoder.decode(b"", final=True))
        if self.tail and not self.tail.endswith("\n"):
            self._emit("\n")
        self.stream.close()

    def _emit(self, text: str) -> None:
        if text:
            self.sink.write(text)
            self.tail = (self.tail + text)[-TAIL_CHARS:]

    def last_lines(self) -> str:
        return "\n".join(self.tail.rstrip("\n").splitlines()[-TAIL_LINES:])


def _env(ctx: TaskContext) -> dict[str, str]:
    payload, spec = ctx.payload, ctx.payload.spec
    env = {"PYTHONUNBUFFERED": "1", **os.environ}
    env.update({k: str(v) for k, v in (spec.get("env") or {}).items()})
    env.update({k: str(v) for k, v in (payload.env or {}).items()})
    env.update(
        MLOPS_TASK_OUTPUTS=str(ctx.workdir / "outputs.json"),
        MLOPS_ARTIFACTS_DIR=str(ctx.artifacts_dir),
        MLOPS_RUN_ID=payload.run_id,
        MLOPS_PIPELINE=payload.pipeline,
        MLOPS_TASK_NAME=payload.task,
        MLOPS_TASK_ATTEMPT=str(payload.attempt),
    )
    return env


def _argv(command: Any) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if isinstance(command, list) and command:
        return [str(part) for part in command]
    raise TaskFailed(f"command must be a string or a non-empty list, not {command!r}")


def run_shell(ctx: TaskContext) -> dict[str, Any]:
    argv = _argv(ctx.payload.spec.get("command"))
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_env(ctx),
            # its own process group, killed as a whole; it stays in the worker's session, where
            # a restarted orchestrator finds what a killed worker left behind
            process_group=0,
            # killed when this thread (which waits for it) or the worker dies, even by SIGKILL
            preexec_fn=lifetime.die_with_parent(signal.SIGKILL),
        )
    except OSError as exc:
        raise TaskFailed(f"cannot start {argv[0]!r}: {exc}", exit_status=127) from None
    _running.add(proc)
    try:
        return _follow(proc, ctx)
    finally:
        _running.discard(proc)


def kill_all() -> None:
    """Kill the process group of every command still running here (the worker is going away).
    No locks: this runs in signal handlers."""
    for proc in list(_running):
        _signal(proc, signal.SIGKILL)


def _follow(proc: subprocess.Popen[bytes], ctx: TaskContext) -> dict[str, Any]:
    assert proc.stdout is not None
    output = _Output(proc.stdout, ctx.sink)
    exited = threading.Event()
    threading.Thread(target=_wait, args=(proc, exited), name="shell-wait", daemon=True).start()
    stopped = _supervise(proc, exited, ctx)
    output.thread.join(PIPE_GRACE_SECONDS)
    if output.thread.is_alive():  # something it started still holds the output open
        _signal(proc, signal.SIGKILL)
        output.thread.join()
    if stopped == "timeout":
        timeout = ctx.payload.timeout_seconds
        raise TaskFailed(
            f"timed out after {timeout:g}s\n{output.last_lines()}".rstrip(), exit_status=EXIT_TIMED_OUT
        )
    if stopped == "cancelled":
        raise TaskFailed(CANCELLED, exit_status=EXIT_CANCELLED)
    code = proc.returncode
    if code != 0:
        reason = f"command killed by signal {-code}" if code < 0 else f"command exited with {code}"
        raise TaskFailed(
            f"{reason}\n{output.last_lines()}".rstrip(), exit_status=code, outputs={"exit_code": code}
        )
    return {**_written_outputs(ctx), "exit_code": 0}


def _wait(proc: subprocess.Popen[bytes], exited: threading.Event) -> None:
    proc.wait()  # a blocking waitpid: the exit is seen at once, not at the next poll
    exited.set()


def _supervise(proc: subprocess.Popen[bytes], exited: threading.Event, ctx: TaskContext) -> str | None:
    """Wait for the command; stop it on timeout or when the heartbeat says so."""
    now = time.monotonic()
    timeout = ctx.payload.timeout_seconds
    deadline = now + timeout if timeout else None
    interval = ctx.heartbeat_interval
    next_beat = now + interval if ctx.heartbeat is not None else None
    while True:
        wakeups = [t for t in (deadline, next_beat) if t is not None]
        if not wakeups:
            exited.wait()
            return None
        if exited.wait(max(0.0, min(wakeups) - time.monotonic())):
            return None
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            _signal(proc, signal.SIGKILL)
            exited.wait()
            return "timeout"
        if next_beat is not None and ctx.heartbeat is not None and now >= next_beat:
            if _alive(ctx):
                next_beat = now + interval
                continue
            ctx.cancelled.set()
            _signal(proc, signal.SIGTERM)
            if not exited.wait(CANCEL_GRACE_SECONDS):
                _signal(proc, signal.SIGKILL)
                exited.wait()
            return "cancelled"


def _alive(ctx: TaskContext) -> bool:
    assert ctx.heartbeat is not None
    try:
        return ctx.heartbeat() is not False
    except Exception:  # a failed heartbeat is the executor's to judge (lease expiry)
        return True


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _written_outputs(ctx: TaskContext) -> dict[str, Any]:
    path = ctx.workdir / "outputs.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    if not data.strip():
        return {}
    try:
        written = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise TaskFailed(f"$MLOPS_TASK_OUTPUTS does not hold valid JSON: {exc}") from None
    if not isinstance(written, dict):
        raise TaskFailed(f"$MLOPS_TASK_OUTPUTS must hold a JSON object, not a {type(written).__name__}")
    return written
