"""Read-modify-writes of one experiment raced by 10 clients against a real process, on SQLite and
PostgreSQL: creation, lifecycle, phases and overrides each take effect once and stay consistent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ab_helpers import experiment
from mlops_kit.testing import BACKENDS, race, service_on, wait_until

CLIENTS = 10


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"MLOPS_AB_TESTING_FOLD_IN_PROCESS": "true", "MLOPS_AB_TESTING_EXPOSURE_FLUSH_SECONDS": "0.05"}
    with service_on("ab_testing", request.param, tmp_path_factory.mktemp(request.param), env) as found:
        yield found


def _create(url: str, key: str, *, start: bool = True) -> None:
    assert httpx.post(f"{url}/api/experiments", json=experiment(key)).status_code == 201
    if start:
        assert httpx.post(f"{url}/api/experiments/{key}/start").status_code == 200


def test_concurrent_creations_of_one_key_make_one_experiment(url: str) -> None:
    def make(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/experiments", json=experiment("contended", description=f"client {i}"))

    responses = race(url, make, CLIENTS)
    assert sorted(r.status_code for r in responses) == [201] + [409] * (CLIENTS - 1)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"EXPERIMENT_EXISTS"}


def test_concurrent_starts_start_once(url: str) -> None:
    _create(url, "started", start=False)

    def start(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/experiments/started/start")

    codes = sorted(r.status_code for r in race(url, start, CLIENTS))
    assert codes == [200] + [409] * (CLIENTS - 1)


def test_concurrent_lifecycle_actions_follow_the_state_machine(url: str) -> None:
    _create(url, "cycled")
    actions = ["pause", "start", "stop", "archive"]

    def act(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(f"/api/experiments/cycled/{actions[i % len(actions)]}")

    responses = race(url, act, CLIENTS)
    assert {r.status_code for r in responses} <= {200, 409}
    final = httpx.get(f"{url}/api/experiments/cycled").json()
    done = [r.json()["status"] for r in responses if r.status_code == 200]
    assert done and final["status"] in done
    assert (final["stopped_at"] is not None) == (final["status"] in ("stopped", "archived"))


def test_concurrent_weight_changes_open_one_phase_each(url: str) -> None:
    _create(url, "phased")

    def reweight(client: httpx.Client, i: int) -> httpx.Response:
        w = round(0.05 + i * 0.09, 2)
        variants = [{"name": "control", "weight": 1 - w}, {"name": "treatment", "weight": w}]
        return client.patch("/api/experiments/phased", json={"variants": variants})

    assert [r.status_code for r in race(url, reweight, CLIENTS)] == [200] * CLIENTS
    phases = httpx.get(f"{url}/api/experiments/phased/phases").json()["items"]
    assert [p["number"] for p in phases] == list(range(1, CLIENTS + 2))
    assert all(p["ended_at"] for p in phases[:-1]) and phases[-1]["ended_at"] is None
    final = httpx.get(f"{url}/api/experiments/phased").json()
    assert final["phase"] == CLIENTS + 1 and final["variants"] == phases[-1]["variants"]


def test_concurrent_overrides_of_one_user_all_succeed_with_one_row(url: str) -> None:
    _create(url, "overridden")

    def force(client: httpx.Client, i: int) -> httpx.Response:
        variant = "treatment" if i % 2 else "control"
        return client.put("/api/experiments/overridden/overrides/vip", json={"variant": variant})

    assert [r.status_code for r in race(url, force, CLIENTS)] == [200] * CLIENTS
    overrides = httpx.get(f"{url}/api/experiments/overridden/definition").json()["overrides"]
    assert list(overrides) == ["vip"]


def _exposed(url: str, key: str) -> bool:
    variants = httpx.get(f"{url}/api/experiments/{key}/results").json()["variants"]
    return all(v["exposures"] >= 1 for v in variants)


def test_concurrent_evaluations_advance_a_canary_one_stage(url: str) -> None:
    canary = {"stages": [20.0, 50.0, 100.0], "stage_seconds": 0.001, "min_samples": 1}
    body = experiment("stepped", mode="canary", canary=canary, metrics=[], primary_metric=None)
    assert httpx.post(f"{url}/api/experiments", json=body).status_code == 201
    assert httpx.post(f"{url}/api/experiments/stepped/start").status_code == 200
    batch = {"experiment": "stepped", "user_ids": [f"u{i}" for i in range(40)]}
    assert httpx.post(f"{url}/api/route/batch", json=batch).status_code == 200
    wait_until(lambda: _exposed(url, "stepped"), timeout=10, what="exposures written")

    def evaluate(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/experiments/stepped/evaluate")

    assert [r.status_code for r in race(url, evaluate, CLIENTS)] == [200] * CLIENTS
    decisions = httpx.get(f"{url}/api/experiments/stepped/decisions").json()["items"]
    assert [d["kind"] for d in decisions].count("advance") == 1
    phases = httpx.get(f"{url}/api/experiments/stepped/phases").json()["items"]
    assert [p["number"] for p in phases] == [1, 2]
