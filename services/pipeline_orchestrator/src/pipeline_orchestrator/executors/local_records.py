"""Durable records of the local executor's worker processes, so that a restarted orchestrator can
stop whatever its previous incarnation left running before it retries anything.

One small JSON file per worker under ``<service dir>/workers/``: this machine and boot, the
orchestrator that owns the worker, and the worker (pid and start time). Each worker leads its own
session, and every command a task starts stays in it, so "the worker's session" is everything
an attempt may have left behind. A file is written before the worker gets any task and removed
once the worker is gone. A process killed with ``kill -9`` writes nothing more, but a file
outlives it: that is what makes the record durable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from pipeline_orchestrator.worker import lifetime

log = logging.getLogger("mlops.orchestrator.local")


class WorkerRecords:
    def __init__(self, directory: Path):
        self.directory = directory
        self.host = socket.gethostname()
        self.boot = lifetime.boot_id()
        self.owner = (os.getpid(), lifetime.start_ticks(os.getpid()))

    def _path(self, pid: int) -> Path:
        return self.directory / f"{self.owner[0]}-{pid}.json"

    def add(self, pid: int) -> int | None:
        """Record worker `pid` (call it before the worker is given a task); returns its start time."""
        self.directory.mkdir(parents=True, exist_ok=True)
        started = lifetime.start_ticks(pid)
        record = {"host": self.host, "boot": self.boot, "owner": list(self.owner), "worker": [pid, started]}
        path = self._path(pid)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
        return started

    def remove(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(pid).unlink()

    def reclaim(self) -> int:
        """Stop the sessions of workers whose orchestrator is gone (a previous incarnation of this
        one, on this machine); returns how many were still running. Workers of a live
        orchestrator (another replica sharing the data directory) are left alone."""
        stopped = 0
        if not lifetime.LINUX:  # nothing can be verified: better not to kill anything
            return 0
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []:
            record = _read(path)
            if record is None:
                path.unlink(missing_ok=True)
                continue
            if record.get("host") != self.host:
                continue
            owner = record["owner"]
            if owner == list(self.owner):
                continue
            if record.get("boot") == self.boot:  # after a reboot, nothing recorded can be running
                if lifetime.is_alive(*owner):
                    continue
                pid, started = record["worker"]
                found = lifetime.stop_session(pid, started)
                if found is None:
                    log.error("worker %s of a previous orchestrator could not be stopped", pid)
                    continue
                if found:
                    stopped += 1
            path.unlink(missing_ok=True)
        if stopped:
            log.warning("stopped %d worker(s) left running by the previous orchestrator", stopped)
        return stopped


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "owner" in record and "worker" in record else None
