"""A stalled experiment-tracking service must not stall the orchestrator: an hpo task's parent
run is created outside the scheduling pass's transaction (it once was made inside it, with
retries and a 60 s timeout, holding the write lock and every other run)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from orchestrator_helpers import define, py, start, task_of, wait_run, wait_until


class StalledServer:
    """A real TCP server on loopback that accepts connections and never answers, until closed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture()
def stalled_tracking(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledServer]:
    server = StalledServer()
    # read by the engine (in this process) when it decides to create an hpo parent run
    monkeypatch.setenv("MLOPS_EXPERIMENT_TRACKING_URL", server.url)
    try:
        yield server
    finally:
        server.close()


def test_other_runs_keep_moving_while_tracking_stalls(
    api: TestClient, stalled_tracking: StalledServer
) -> None:
    define(
        api,
        "stalled-search",
        [
            {
                "name": "tune",
                "kind": "hpo",
                "callable": "orchestrator_engine_fixtures:quadratic",
                "search_space": {"x": {"type": "float", "low": 0, "high": 6}},
                "n_trials": 2,
                "parallelism": 2,
                "metric": "score",
                "seed": 3,
            }
        ],
    )
    search = start(api, "stalled-search")
    wait_until(lambda: stalled_tracking.accepted, 30, "the engine to call experiment tracking")
    define(api, "bystander", [py("a", "noop", cache=False), py("b", "noop", depends_on=["a"], cache=False)])
    for _ in range(3):
        assert wait_run(api, start(api, "bystander"), timeout=20)["state"] == "succeeded"
    # the search waits for its parent run: no trial starts while tracking has not answered
    run = api.get(f"/api/runs/{search}").json()
    assert run["state"] == "running" and task_of(run, "tune")["state"] == "running"
    assert [t for t in run["tasks"] if t["parent"] == "tune"] == []
    stalled_tracking.close()  # tracking fails: the search goes on without a parent run
    run = wait_run(api, search, timeout=60)
    assert run["state"] == "succeeded", run
    assert task_of(run, "tune")["outputs"]["parent_run_id"] is None
