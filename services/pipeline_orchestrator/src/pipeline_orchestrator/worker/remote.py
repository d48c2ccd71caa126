"""The remote side of an attempt: run a payload anywhere and report over the orchestrator's worker API.

Used by the Celery task and by ``python -m pipeline_orchestrator.worker run`` (Kubernetes Jobs).
:func:`run_remote`:

1. ``POST .../started`` (refused with 409 ATTEMPT_NOT_CURRENT when the attempt was cancelled, lost,
   or already finished: a redelivered broker message then does nothing);
2. runs :func:`pipeline_orchestrator.worker.runner.execute` in this process while a background
   thread ships the log text (about every second), posts heartbeats (every ``lease/3`` seconds at
   most, so the lease never lapses while the worker lives) and watches the attempt's timeout;
3. ``POST .../finished`` with the :class:`TaskResult`, retried with backoff while the orchestrator
   is unreachable (it may be restarting); 409 means the attempt is no longer current: dropped.

A heartbeat answered ``{"continue": false}`` (cancelled or declared lost) and an expired timeout
call ``on_abandon``: the caller decides how the running work is stopped (the CLI kills its process
tree; a Celery worker kills the task's child processes and relies on its soft/hard time limits and
``revoke(terminate=True)``). On timeout the result is reported before that, as a failure whose
error is "timed out after Xs" with exit status -9, as the runner reports the timeouts it enforces
itself (shell, http).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline_orchestrator.protocol import TaskPayload, TaskResult
from pipeline_orchestrator.worker.runner import EXIT_TIMED_OUT, execute

log = logging.getLogger("mlops.pipeline_orchestrator.worker")

LEASE_ENV = "MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0

# one log POST carries at most this many characters; the buffer keeps at most LOG_BUFFER_CHARS
LOG_POST_CHARS = 256 * 1024
LOG_BUFFER_CHARS = 8 * 1024 * 1024
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class AttemptNotCurrent(Exception):
    """The orchestrator no longer wants this attempt (409 ATTEMPT_NOT_CURRENT or continue=false)."""


class ReportFailed(Exception):
    """The orchestrator refused a report for a reason a retry will not fix."""


@dataclass
class RemoteOptions:
    """Timing knobs; the defaults suit production, tests shorten them."""

    lease_seconds: float | None = None  # default: $MLOPS_PIPELINE_ORCHESTRATOR_LEASE_SECONDS or 30
    log_interval: float = 1.0
    start_retry_seconds: float = 60.0
    finish_retry_seconds: float = 600.0
    request_timeout: float = 10.0
    # the runner gets this long past the timeout to report its own (more precise) failure first
    timeout_grace_seconds: float = 1.0

    @property
    def heartbeat_interval(self) -> float:
        lease = self.lease_seconds
        if lease is None:
            try:
                lease = float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_SECONDS)
            except ValueError:
                lease = DEFAULT_LEASE_SECONDS
        return max(0.2, min(5.0, lease / 3))


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def timed_out_result(timeout: float) -> TaskResult:
    return TaskResult(
        ok=False,
        error=f"timed out after {timeout:g}s",
        exit_status=EXIT_TIMED_OUT,
    )


class _HideWorkerApiRequests(logging.Filter):
    """httpx logs every request at INFO; while a task runs, the root logger writes into its log,
    where a line per heartbeat would be noise (and a line per log POST would feed itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return WORKER_API_PATH not in record.getMessage()


WORKER_API_PATH = "/api/workers/attempts/"
_filter_installed = False


def _quiet_httpx() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("httpx").addFilter(_HideWorkerApiRequests())
        _filter_installed = True


_clients: dict[int, httpx.Client] = {}
_clients_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    """One client per process (a Celery pool process runs many attempts): creating one costs
    a TLS context, ~0.2-0.5 s. Keyed by pid: a client is never used across a fork."""
    pid = os.getpid()
    with _clients_lock:
        client = _clients.get(pid)
        if client is None:
            _clients.clear()
            client = _clients[pid] = httpx.Client()
        return client


def warm_up() -> None:
    """Pay the one-off costs before the first attempt (a Celery pool process calls it at start):
    the HTTP client's TLS context and the runner's task kinds."""
    import importlib

    from pipeline_orchestrator.worker.runner import KINDS

    _shared_client()
    for module, _, _ in set(KINDS.values()):
        try:
            importlib.import_module(module)
        except Exception:  # the runner reports it when a task of that kind runs
            log.debug("preloading %s failed", module, exc_info=True)


class WorkerApi:
    """The orchestrator's worker API for one attempt."""

    def __init__(
        self,
        payload: TaskPayload,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not payload.callback_url:
            raise ValueError("the payload has no callback_url: the engine must fill it for remote executors")
        self.headers = {"X-Attempt-Token": payload.callback_token or ""}
        api_key = os.environ.get("MLOPS_API_KEY")
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.prefix = f"{payload.callback_url.rstrip('/')}{WORKER_API_PATH}{payload.attempt_id}"
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        _quiet_httpx()
        self._own = transport is not None
        self.http = httpx.Client(transport=transport) if transport is not None else _shared_client()

    def close(self) -> None:
        if self._own:
            self.http.close()

    def post(self, what: str, **kwargs: Any) -> httpx.Response:
        """One POST; raises AttemptNotCurrent on 409, ReportFailed on other 4xx, httpx errors on 5xx."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = self.http.post(f"{self.prefix}/{what}", headers=headers, timeout=self.timeout, **kwargs)
        if response.status_code == 409:
            raise AttemptNotCurrent(_error_text(response))
        if response.status_code in RETRYABLE_STATUS:
            response.raise_for_status()
        if response.status_code >= 400:
            raise ReportFailed(f"POST {what}: HTTP {response.status_code}: {_error_text(response)}")
        return response

    def post_retrying(self, what: str, budget: float, **kwargs: Any) -> httpx.Response:
        """POST, retried with exponential backoff on connection errors and 5xx for ``budget`` seconds."""
        deadline = time.monotonic() + budget
        delay = 0.25
        while True:
            try:
                return self.post(what, **kwargs)
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                log.warning("POST %s failed (%s); retrying in %.1fs", what, _describe(exc), min(delay, left))
                time.sleep(min(delay, left))
                delay = min(delay * 2, 15.0)


class _Reporter:
    """Buffers log text and runs the background loop: logs, heartbeats, timeout."""

    def __init__(
        self,
        api: WorkerApi,
        payload: TaskPayload,
        worker: str,
        options: RemoteOptions,
        on_abandon: Callable[[str], None] | None,
    ):
        self.api = api
        self.payload = payload
        self.worker = worker
        self.options = options
        self.on_abandon = on_abandon
        self._lock = threading.Lock()
        self._buffer: deque[str] = deque()
        self._buffered = 0
        self._dropped = 0
        self._shipping = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._continue = True
        self._abandoned = False
        self._finishing = threading.Lock()
        self.reported = threading.Event()  # a finished result was delivered (or refused for good)
        self.delivered: TaskResult | None = None  # the result the orchestrator took
        self.deadline: float | None = None

    # -- the runner's callbacks -------------------------------------------------------------------

    def write(self, text: str) -> int:
        """The runner's log sink (``LogSink``): buffered here, shipped by the background loop."""
        if not text:
            return 0
        with self._lock:
            self._buffer.append(text)
            self._buffered += len(text)
            while self._buffered > LOG_BUFFER_CHARS and len(self._buffer) > 1:
                # the orchestrator has been unreachable for long: keep the newest text
                dropped = self._buffer.popleft()
                self._buffered -= len(dropped)
                self._dropped += len(dropped)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the background loop ships every ``log_interval``, ``finish`` ships the rest."""

    def heartbeat(self) -> bool:
        """The last answer of the orchestrator: False once the attempt is cancelled or lost."""
        return self._continue

    # -- background loop --------------------------------------------------------------------------

    def start(self) -> None:
        if self.payload.timeout_seconds:
            self.deadline = (
                time.monotonic() + float(self.payload.timeout_seconds) + self.options.timeout_grace_seconds
            )
        self._thread = threading.Thread(target=self._loop, name="attempt-reporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.options.request_timeout * 2 + 5)

    def _loop(self) -> None:
        interval = self.options.heartbeat_interval
        next_log = time.monotonic() + self.options.log_interval
        next_beat = time.monotonic() + interval
        while not self._stop.wait(0.1):
            now = time.monotonic()
            try:
                if now >= next_log:
                    self.ship_logs()
                    next_log = now + self.options.log_interval
                if now >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + interval
                if self.deadline is not None and now >= self.deadline and not self.reported.is_set():
                    self._time_out()
            except Exception:  # never let the reporter die: the lease depends on it
                log.exception("attempt %s: reporter error", self.payload.attempt_id)

    def _beat(self) -> None:
        try:
            response = self.api.post("heartbeat", json={"worker": self.worker})
            answer = bool(response.json().get("continue", True))
        except AttemptNotCurrent:
            answer = False
        except (httpx.TransportError, httpx.HTTPStatusError, ReportFailed, ValueError) as exc:
            # keep the last answer: an orchestrator restart must not stop the work
            log.warning("attempt %s: heartbeat failed: %s", self.payload.attempt_id, _describe(exc))
            return
        if not answer and self._continue:
            log.warning("attempt %s: the orchestrator says stop (cancelled or lost)", self.payload.attempt_id)
            self._continue = False
            self._abandon("cancelled")

    def _time_out(self) -> None:
        timeout = float(self.payload.timeout_seconds or 0)
        self.write(f"[worker] timed out after {timeout:g}s: stopping the task\n")
        self.finish(timed_out_result(timeout))
        self._abandon("timeout")

    def _abandon(self, why: str) -> None:
        if self._abandoned:
            return
        self._abandoned = True
        if self.on_abandon is not None:
            self.on_abandon(why)

    # -- shipping ---------------------------------------------------------------------------------

    def _take(self) -> str:
        with self._lock:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._buffered = 0
            if self._dropped:
                text = (
                    f"[worker] ... {self._dropped} characters of log dropped while unreachable ...\n" + text
                )
                self._dropped = 0
            return text

    def _put_back(self, text: str) -> None:
        with self._lock:
            self._buffer.appendleft(text)
            self._buffered += len(text)

    def ship_logs(self, *, retry_seconds: float = 0.0) -> None:
        """Send the buffered text; on a transient failure it stays buffered for the next call."""
        with self._shipping:
            text = self._take()
            while text:
                chunk, text = text[:LOG_POST_CHARS], text[LOG_POST_CHARS:]
                try:
                    self.api.post_retrying(
                        "logs",
                        retry_seconds,
                        content=chunk.encode("utf-8", errors="replace"),
                        headers={"Content-Type": "text/plain; charset=utf-8"},
                    )
                except (AttemptNotCurrent, ReportFailed) as exc:
                    log.warning("attempt %s: log text refused: %s", self.payload.attempt_id, exc)
                    return  # nobody wants it
                except (httpx.TransportError, httpx.HTTPStatusError):
                    self._put_back(chunk + text)
                    return

    def finish(self, result: TaskResult) -> bool:
        """Report a result, once (the first caller wins); True when the orchestrator took it."""
        with self._finishing:
            if self.reported.is_set():
                return False
            try:
                return self._finish(result)
            finally:
                self.reported.set()

    def _finish(self, result: TaskResult) -> bool:
        self.ship_logs(retry_seconds=min(30.0, self.options.finish_retry_seconds))
        body = _jsonable_result(result)
        try:
            self.api.post_retrying("finished", self.options.finish_retry_seconds, json=body)
        except AttemptNotCurrent as exc:
            log.warning("attempt %s: result dropped, attempt not current: %s", self.payload.attempt_id, exc)
            return False
        except (ReportFailed, httpx.TransportError, httpx.HTTPStatusError) as exc:
            log.error("attempt %s: could not report the result: %s", self.payload.attempt_id, _describe(exc))
            return False
        self.delivered = TaskResult.from_dict(body)
        return True


def run_remote(
    payload: TaskPayload,
    *,
    worker: str | None = None,
    options: RemoteOptions | None = None,
    on_abandon: Callable[[str], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> TaskResult:
    """Run one attempt and report it to ``payload.callback_url``; returns the attempt's result.

    ``on_abandon(why)`` (why: "cancelled" or "timeout") is called from the reporter thread when
    the work must stop while the runner is still running it.
    """
    options = options or RemoteOptions()
    worker = worker or default_worker_name()
    api = WorkerApi(payload, timeout=options.request_timeout, transport=transport)
    try:
        try:
            response = api.post_retrying("started", options.start_retry_seconds, json={"worker": worker})
            wanted = bool(response.json().get("continue", True))
        except AttemptNotCurrent as exc:
            log.warning("attempt %s is not current; not running it (%s)", payload.attempt_id, exc)
            return TaskResult(ok=False, error=f"attempt not current: {exc}")
        except (ReportFailed, httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
            log.error("attempt %s: could not report the start: %s", payload.attempt_id, _describe(exc))
            return TaskResult(ok=False, error=f"could not report the start to the orchestrator: {exc}")
        if not wanted:
            log.warning("attempt %s: the orchestrator says not to run it", payload.attempt_id)
            return TaskResult(ok=False, error="the orchestrator declined the attempt")

        reporter = _Reporter(api, payload, worker, options, on_abandon)
        reporter.start()
        try:
            result = _execute(payload, reporter)
        finally:
            reporter.stop()
        if reporter.reported.is_set():  # the timeout was reported while the task still ran
            reporter.ship_logs()
            return reporter.delivered or result
        if not reporter.heartbeat():
            # cancelled or lost: nobody wants the result; still send the logs we have
            reporter.ship_logs()
            return result
        reporter.finish(result)
        return reporter.delivered or result
    finally:
        api.close()


def _execute(payload: TaskPayload, reporter: _Reporter) -> TaskResult:
    try:
        return execute(payload, log=reporter, heartbeat=reporter.heartbeat)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        # the runner reports task failures itself; this is a failure of the runner (or Celery's
        # SoftTimeLimitExceeded raised outside the task's own code)
        text = traceback.format_exc()
        reporter.write(text)
        return TaskResult(ok=False, error=text, exit_status=1)


def _jsonable_result(result: TaskResult) -> dict[str, Any]:
    body = result.to_dict()
    try:
        httpx.Request("POST", "http://x", json=body)
    except (TypeError, ValueError) as exc:
        return TaskResult(
            ok=False,
            error=f"the task's outputs are not JSON-serialisable: {exc}\n{result.error or ''}".strip(),
            exit_status=result.exit_status if result.exit_status not in (None, 0) else 1,
        ).to_dict()
    return body


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except ValueError:
        return response.text[:300]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"


def decode_payload(text: str) -> TaskPayload:
    """A payload from base64 JSON (standard or URL-safe alphabet)."""
    raw = text.strip()
    try:
        data: Any = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=False))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the payload is not base64-encoded JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the payload must be a JSON object")
    try:
        return TaskPayload.from_dict(data)
    except TypeError as exc:
        raise ValueError(f"the payload does not match TaskPayload: {exc}") from None


def encode_payload(payload: TaskPayload) -> str:
    return base64.b64encode(json.dumps(payload.to_dict(), separators=(",", ":")).encode()).decode("ascii")


def kill_descendants(sig: int = signal.SIGKILL) -> int:
    """Signal every descendant process of this one (Linux ``/proc``; best effort). Returns how many."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return len(found)
