"""Concurrent alias decisions of one experiment against a real A/B process and a real model
registry process, on SQLite and PostgreSQL: one decision wins, the others are told (409), and the
registry alias always matches the last recorded decision.

The registry sits behind a slow link (each connection held ``DELAY`` seconds before it is relayed)
so that every concurrent request reaches the service while the first one is moving the alias.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ab_helpers import experiment
from mlops_client import NotFoundError, RegistryClient
from mlops_kit.testing import BACKENDS, ServiceProcess, race, service_on, wait_until

CLIENTS = 8
DELAY = 1.5  # seconds the slow link holds a connection: far longer than the others need to arrive


class SlowLink:
    """A TCP relay to 127.0.0.1:`port` that holds each connection `delay` seconds first."""

    def __init__(self, port: int, delay: float):
        self.port, self.delay = port, delay
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        if self._closed.wait(self.delay):  # the injected latency (not a wait for a condition)
            conn.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        except OSError:
            conn.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
        back.start()
        _pump(conn, upstream)
        back.join(timeout=30)
        upstream.close()
        conn.close()

    def close(self) -> None:
        self._closed.set()
        self.server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = Path(tmp_path_factory.mktemp("promote-registry"))
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=tmp) as service:
        yield service.url


@pytest.fixture(scope="module")
def registry(registry_url: str) -> Iterator[RegistryClient]:
    with RegistryClient(registry_url) as client:
        yield client


@pytest.fixture(scope="module", params=BACKENDS)
def url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, registry_url: str
) -> Iterator[str]:
    link = SlowLink(httpx.URL(registry_url).port or 80, DELAY)
    env = {
        "MLOPS_MODEL_REGISTRY_URL": link.url,
        "MLOPS_AB_TESTING_FOLD_IN_PROCESS": "true",
        "MLOPS_AB_TESTING_EXPOSURE_FLUSH_SECONDS": "0.05",
    }
    try:
        with service_on("ab_testing", request.param, tmp_path_factory.mktemp(request.param), env) as found:
            yield found
    finally:
        link.close()


def _model(registry: RegistryClient, versions: int) -> str:
    name = f"ranked-{secrets.token_hex(4)}"
    for _ in range(versions):
        registry.register_model(name, framework="sklearn")
    return name


def _alias(registry: RegistryClient, name: str) -> str | None:
    try:
        return registry.get_alias(name, "production").version
    except NotFoundError:
        return None


def _decisions(url: str, key: str) -> list[dict[str, Any]]:
    items = httpx.get(f"{url}/api/experiments/{key}/decisions").json()["items"]
    return [d for d in items if d["kind"] in ("promote", "rollback")]


def _settled(url: str, key: str) -> list[dict[str, Any]] | None:
    """The decisions once none of their alias moves is still pending or being retried."""
    decisions = _decisions(url, key)
    unsettled = {"pending", "retrying"}
    return None if any(d["details"]["registry"]["status"] in unsettled for d in decisions) else decisions


def _start(url: str, body: dict[str, Any]) -> None:
    assert httpx.post(f"{url}/api/experiments", json=body).status_code == 201
    assert httpx.post(f"{url}/api/experiments/{body['name']}/start").status_code == 200


def test_concurrent_promotes_of_different_variants_record_one_decision_and_the_alias_matches_it(
    url: str, registry: RegistryClient
) -> None:
    name = _model(registry, CLIENTS)
    variants = [{"name": f"v{i}", "weight": 1 / CLIENTS, "model_version": str(i + 1)} for i in range(CLIENTS)]
    _start(url, experiment("contested", model_name=name, variants=variants))

    def promote(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/experiments/contested/promote", json={"variant": f"v{i}"})

    responses = race(url, promote, CLIENTS)
    assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1)
    refused = [r.json()["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} == {"DECISION_IN_PROGRESS"}
    assert all(e["details"]["kind"] == "promotion" for e in refused)
    winner = next(r.json() for r in responses if r.status_code == 200)
    decisions = _decisions(url, "contested")
    assert [d["id"] for d in decisions] == [winner["id"]]
    recorded = decisions[0]["details"]
    assert recorded["registry"]["status"] == "done"
    assert recorded["registry"]["to"] == str(int(recorded["variant"][1:]) + 1)
    assert _alias(registry, name) == recorded["registry"]["to"]

    # once it is done the experiment takes the next decision
    again = httpx.post(f"{url}/api/experiments/contested/promote", json={"variant": "v0"}, timeout=30)
    assert again.status_code == 200, again.text
    assert _alias(registry, name) == "1"
    assert [d["id"] for d in _decisions(url, "contested")] == [winner["id"], again.json()["id"]]


def _exposed(url: str, key: str) -> bool:
    variants = httpx.get(f"{url}/api/experiments/{key}/results").json()["variants"]
    return all(v["exposures"] >= 1 for v in variants)


def test_a_promote_racing_the_canary_controller_leaves_the_alias_at_the_last_decision(
    url: str, registry: RegistryClient
) -> None:
    name = _model(registry, 2)
    canary = {"stages": [50.0, 100.0], "stage_seconds": 0.001, "min_samples": 1}
    variants = [
        {"name": "control", "weight": 0.5, "model_version": "1"},
        {"name": "treatment", "weight": 0.5, "model_version": "2"},
    ]
    body = experiment(
        "raced",
        mode="canary",
        model_name=name,
        canary=canary,
        variants=variants,
        metrics=[],
        primary_metric=None,
    )
    _start(url, body)
    batch = {"experiment": "raced", "user_ids": [f"u{i}" for i in range(40)]}
    assert httpx.post(f"{url}/api/route/batch", json=batch).status_code == 200
    wait_until(lambda: _exposed(url, "raced"), timeout=10, what="exposures written")

    def act(client: httpx.Client, i: int) -> httpx.Response:
        if i == 0:  # the canary is due to promote the treatment; a person promotes the control
            return client.post("/api/experiments/raced/promote", json={"variant": "control"})
        return client.post("/api/experiments/raced/evaluate")

    responses = race(url, act, 4)
    assert responses[0].status_code in (200, 409), responses[0].text
    assert [r.status_code for r in responses[1:]] == [200] * 3
    # a registry call that timed out on a loaded machine is "retrying" until the controller's next tick
    decisions = wait_until(
        lambda: _settled(url, "raced"), timeout=60, what="the alias moves settled", tolerate=()
    )
    assert decisions and all(d["details"]["registry"]["status"] == "done" for d in decisions)
    assert _alias(registry, name) == decisions[-1]["details"]["registry"]["to"]


def _due_canary(url: str, registry: RegistryClient, key: str) -> str:
    """A canary on a fresh model (production -> 1) that its next evaluation promotes to version 2."""
    name = _model(registry, 2)
    registry.set_alias(name, "production", "1")
    canary = {"stages": [50.0, 100.0], "stage_seconds": 0.001, "min_samples": 1}
    variants = [
        {"name": "control", "weight": 0.5, "model_version": "1"},
        {"name": "treatment", "weight": 0.5, "model_version": "2"},
    ]
    body = experiment(
        key, mode="canary", model_name=name, canary=canary, variants=variants, metrics=[], primary_metric=None
    )
    _start(url, body)
    batch = {"experiment": key, "user_ids": [f"u{i}" for i in range(40)]}
    assert httpx.post(f"{url}/api/route/batch", json=batch).status_code == 200
    wait_until(lambda: _exposed(url, key), timeout=10, what="exposures written")
    return name


def test_concurrent_evaluations_of_a_due_canary_move_the_alias_once(
    url: str, registry: RegistryClient
) -> None:
    name = _due_canary(url, registry, "settled")

    def evaluate(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/experiments/settled/evaluate")

    assert [r.status_code for r in race(url, evaluate, 4)] == [200] * 4
    decisions = _decisions(url, "settled")
    assert [(d["kind"], d["details"]["registry"]["status"]) for d in decisions] == [("promote", "done")]
    moves = registry.history(name, kind="alias", of="production").items
    assert [(m.from_value, m.to_value) for m in moves if m.to_value == "2"] == [("1", "2")]
    assert _alias(registry, name) == "2"
