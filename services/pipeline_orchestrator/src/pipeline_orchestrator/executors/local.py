"""The local executor: a pool of long-lived worker processes on this machine.

Each worker is a spawned Python process that runs one attempt at a time and reports through its
pipe. A worker leads its own session, and the commands its tasks start stay in it. It dies with
the orchestrator, taking its whole session along: the kernel sends it SIGTERM when the
orchestrator dies (a parent-death signal; it also watches its parent), and so does anything a
task runs. Every worker is recorded on disk (``local_records``); a restarted orchestrator stops
the sessions of the previous one's workers, and waits until they are gone, before it retries
anything. So after a crash no attempt runs twice at once. A timed-out or cancelled attempt's
worker is terminated (its task's child processes with it) and replaced.

``resources.cpu`` counts in slots: a task asking for 2 cores takes two of the pool's
``workers`` slots while it runs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from pipeline_orchestrator.executors.local_records import WorkerRecords
from pipeline_orchestrator.protocol import EventSink, Executor, ExecutorEvent, TaskPayload, TaskResult
from pipeline_orchestrator.settings import OrchestratorSettings
from pipeline_orchestrator.worker import lifetime

log = logging.getLogger("mlops.orchestrator.local")


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            _kill_children()
            os._exit(70)
        time.sleep(0.2)


def _kill_children() -> None:
    try:
        from pipeline_orchestrator.worker import runner

        kill = getattr(runner, "kill_active_children", None)
        if kill is not None:
            kill()
    except Exception:
        pass
    # and whatever else the tasks left in this worker's session
    lifetime.kill_session(os.getsid(0), spare=os.getpid())


def _on_term(signum: int, frame: Any) -> None:
    _kill_children()
    os._exit(128 + signum)


def worker_main(conn: Connection, settings_values: dict[str, Any], parent: int) -> None:
    """The worker process: receive a payload, run it, send the result; until the pipe closes."""
    os.setsid()  # the session holds everything this worker's tasks start
    signal.signal(signal.SIGTERM, _on_term)
    # SIGTERM when the orchestrator's spawning thread (which lives as long as it) ends
    lifetime.set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(70)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # task code runs here: it gets no copy of the service's own secrets (its key list, its database)
    for name in list(os.environ):
        if name.endswith(("API_KEYS", "DATABASE_URL", "ALERT_WEBHOOK_TOKEN")) and name.startswith("MLOPS_"):
            del os.environ[name]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the orchestrator, which stops us
    from pipeline_orchestrator.worker.runner import execute

    settings = OrchestratorSettings(**settings_values)
    name = f"{socket.gethostname()}:{os.getpid()}"
    conn.send(("ready", name))
    # what every python task needs, imported now rather than on the worker's first task
    import pipeline_orchestrator.worker.artifacts
    import pipeline_orchestrator.worker.kind_python
    import pipeline_orchestrator.worker.kind_shell  # noqa: F401

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        payload = TaskPayload.from_dict(message)
        try:
            assert payload.log_path is not None
            os.makedirs(os.path.dirname(payload.log_path), exist_ok=True)
            with open(payload.log_path, "a", buffering=1, encoding="utf-8", errors="replace") as log_file:
                result = execute(payload, log=log_file, settings=settings)
        except BaseException as exc:  # the runner never raises; this is the worker's own failure
            result = TaskResult(ok=False, error=f"worker failure: {exc!r}", exit_status=1)
        try:
            conn.send(("finished", payload.attempt_id, result.to_dict()))
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    name: str | None = None
    attempt_id: str | None = None
    slots: int = 0
    deadline: float | None = None
    timeout: float | None = None
    started: int | None = None  # start time (clock ticks), with the pid the process's identity


class LocalExecutor(Executor):
    name = "local"
    remote = False

    def __init__(self, settings: OrchestratorSettings):
        self.settings = settings
        self.size = settings.workers
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.RLock()
        self._sink: EventSink | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._settings_values = settings.model_dump(exclude_none=True, exclude={"alert_webhook_token"})
        self.records = WorkerRecords(settings.service_dir.resolve() / "workers")
        # workers are forked from this one thread: their parent-death signal fires when the
        # thread that forked them ends, and this one lives as long as the executor
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-worker-spawner")

    # -- pool -------------------------------------------------------------------------------

    def reclaim(self) -> None:
        self.records.reclaim()

    def _spawn(self) -> _Worker:
        return self._spawner.submit(self._spawn_here).result()

    def _spawn_here(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child_conn, self._settings_values, os.getpid()),
            name="mlops-pipeline-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()
        assert process.pid is not None
        started = self.records.add(process.pid)
        return _Worker(process=process, conn=parent_conn, started=started)

    def start(self, sink: EventSink) -> None:
        self._sink = sink
        with self._lock:
            self._workers = [self._spawn() for _ in range(self.size)]
        self._thread = threading.Thread(target=self._read_loop, name="local-executor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with self._lock:
            workers, self._workers = self._workers, []
        for w in workers:
            if w.process.is_alive():
                w.process.terminate()
        for w in workers:
            w.process.join(timeout=3)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=3)
            w.conn.close()
            self._forget(w)
        self._spawner.shutdown(wait=False)
        if self._thread is not None:
            self._thread.join(timeout=3)

    def _forget(self, worker: _Worker) -> None:
        """A stopped or dead worker: whatever its task left in its session (a worker killed by
        SIGKILL, say by the OOM killer, could not clean up) is killed before the attempt is
        reported, so a retry never overlaps it."""
        if worker.process.is_alive():
            return
        if lifetime.stop_session(worker.process.pid, worker.started) is None and lifetime.LINUX:
            log.error("processes left by worker %s could not be stopped", worker.process.pid)
            return
        self.records.remove(worker.process.pid)

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            try:
                index = self._workers.index(worker)
            except ValueError:
                return
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=2)
                if worker.process.is_alive():
                    worker.process.kill()
                    worker.process.join(timeout=2)
            worker.conn.close()
            self._forget(worker)
            if not self._stopping:
                self._workers[index] = self._spawn()
            else:
                del self._workers[index]

    # -- executor interface -----------------------------------------------------------------

    def free_slots(self) -> int | None:
        with self._lock:
            return self.size - sum(w.slots for w in self._workers if w.attempt_id)

    def running(self) -> set[str]:
        with self._lock:
            return {w.attempt_id for w in self._workers if w.attempt_id}

    def submit(self, payload: TaskPayload) -> None:
        cpu = payload.resources.get("cpu")
        slots = max(1, min(self.size, int(-(-float(cpu) // 1)))) if cpu else 1
        with self._lock:
            idle = next((w for w in self._workers if w.attempt_id is None), None)
            if idle is None:
                raise RuntimeError("no idle local worker (the engine submitted beyond free_slots)")
            idle.attempt_id = payload.attempt_id
            idle.slots = slots
            idle.timeout = payload.timeout_seconds
            idle.deadline = time.monotonic() + payload.timeout_seconds if payload.timeout_seconds else None
            idle.conn.send(payload.to_dict())
            name = idle.name
        if name and self._sink:
            self._sink(ExecutorEvent("started", payload.attempt_id, worker=name))

    def cancel(self, attempt_id: str) -> None:
        with self._lock:
            worker = next((w for w in self._workers if w.attempt_id == attempt_id), None)
            if worker is None:
                return
            worker.attempt_id = None
            worker.slots = 0
        self._replace(worker)

    # -- the reader ---------------------------------------------------------------------------

    def _emit(self, event: ExecutorEvent) -> None:
        if self._sink is not None:
            self._sink(event)

    def _read_loop(self) -> None:
        while not self._stopping:
            with self._lock:
                conns = {w.conn: w for w in self._workers}
            try:
                ready = wait(list(conns), timeout=0.1)
            except OSError:
                ready = []
            for ready_conn in ready:
                worker = conns[ready_conn]  # type: ignore[index]
                try:
                    message: Any = worker.conn.recv()
                except (EOFError, OSError):
                    self._died(worker)
                    continue
                if message[0] == "ready":
                    worker.name = message[1]
                    if worker.attempt_id:
                        self._emit(ExecutorEvent("started", worker.attempt_id, worker=worker.name))
                elif message[0] == "finished":
                    _, attempt_id, result = message
                    with self._lock:
                        if worker.attempt_id == attempt_id:
                            worker.attempt_id = None
                            worker.slots = 0
                            worker.deadline = None
                    self._emit(ExecutorEvent("finished", attempt_id, result=TaskResult.from_dict(result)))
            self._check_deadlines()

    def _died(self, worker: _Worker) -> None:
        if self._stopping:
            return
        worker.process.join(timeout=1)
        code = worker.process.exitcode
        attempt_id = worker.attempt_id
        worker.attempt_id = None
        worker.slots = 0
        self._replace(worker)
        if attempt_id:
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            self._emit(
                ExecutorEvent(
                    "finished",
                    attempt_id,
                    result=TaskResult(
                        ok=False,
                        error=f"the worker process died while running the task ({how})",
                        exit_status=code,
                    ),
                )
            )

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [w for w in self._workers if w.attempt_id and w.deadline is not None and now > w.deadline]
        for worker in late:
            attempt_id, timeout = worker.attempt_id, worker.timeout
            worker.attempt_id = None
            worker.slots = 0
            self._replace(worker)
            if attempt_id:
                self._emit(
                    ExecutorEvent(
                        "finished",
                        attempt_id,
                        result=TaskResult(ok=False, error=f"timed out after {timeout:g}s", exit_status=-9),
                    )
                )
