"""Worker records: a restarted orchestrator stops exactly the sessions its dead predecessor left
(real processes; Linux /proc)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orchestrator_helpers import wait_until
from pipeline_orchestrator.executors.local_records import WorkerRecords
from pipeline_orchestrator.worker import lifetime


def _session(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A session leader with a grandchild in its session; returns it and the grandchild's pid."""
    pidfile = tmp / f"grandchild-{len(list(tmp.iterdir()))}"
    leader = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], start_new_session=True
    )
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the grandchild")
    return leader, int(pidfile.read_text())


def _dead_owner() -> list[int | None]:
    finished = subprocess.Popen(["true"])
    started = lifetime.start_ticks(finished.pid)
    finished.wait()
    return [finished.pid, started]


def _write(records: WorkerRecords, owner: list, pid: int, started: int | None) -> Path:
    records.directory.mkdir(parents=True, exist_ok=True)
    path = records.directory / f"{owner[0]}-{pid}.json"
    record = {"host": records.host, "boot": records.boot, "owner": owner, "worker": [pid, started]}
    path.write_text(json.dumps(record))
    return path


def test_the_sessions_of_a_dead_orchestrators_workers_are_killed(tmp_path: Path) -> None:
    records = WorkerRecords(tmp_path / "workers")
    leader, grandchild = _session(tmp_path)
    path = _write(records, _dead_owner(), leader.pid, lifetime.start_ticks(leader.pid))
    assert records.reclaim() == 1
    leader.wait(timeout=10)
    assert not lifetime.session_members(leader.pid)
    assert lifetime.start_ticks(grandchild) is None
    assert not path.exists()


def test_a_session_whose_leader_died_is_still_found_by_its_id(tmp_path: Path) -> None:
    records = WorkerRecords(tmp_path / "workers")
    leader, grandchild = _session(tmp_path)
    started = lifetime.start_ticks(leader.pid)
    leader.kill()  # a SIGKILLed worker: its grandchild lives on in the session
    leader.wait()
    assert lifetime.session_members(leader.pid) == [grandchild]
    _write(records, _dead_owner(), leader.pid, started)
    assert records.reclaim() == 1
    assert lifetime.start_ticks(grandchild) is None


def test_workers_of_a_live_orchestrator_and_reused_pids_are_left_alone(tmp_path: Path) -> None:
    records = WorkerRecords(tmp_path / "workers")
    owner, _ = _session(tmp_path)  # another orchestrator, alive
    mine, mine_child = _session(tmp_path)
    reused, reused_child = _session(tmp_path)
    try:
        live = _write(
            records, [owner.pid, lifetime.start_ticks(owner.pid)], mine.pid, lifetime.start_ticks(mine.pid)
        )
        # the recorded worker's pid now names a process that started at another time
        stale = _write(records, _dead_owner(), reused.pid, (lifetime.start_ticks(reused.pid) or 0) - 1)
        assert records.reclaim() == 0
        assert all(lifetime.start_ticks(pid) for pid in (mine.pid, mine_child, reused.pid, reused_child))
        assert live.exists() and not stale.exists()
    finally:
        for process in (owner, mine, reused):
            lifetime.kill_session(process.pid)
            process.wait()
