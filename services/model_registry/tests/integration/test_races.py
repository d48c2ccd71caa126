"""Read-modify-writes of one model raced by 10 clients against a real process, on SQLite and
PostgreSQL: stages, aliases, version numbers and artifact checksums stay consistent."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest
from mlops_kit.testing import BACKENDS, race, service_on

CLIENTS = 10


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with service_on("model_registry", request.param, tmp_path_factory.mktemp(request.param)) as found:
        yield found


def _register(url: str, name: str, count: int) -> None:
    for _ in range(count):
        assert httpx.post(f"{url}/api/models", json={"name": name}).status_code == 201


def _history(url: str, name: str, kind: str) -> list[dict]:
    page = httpx.get(f"{url}/api/models/{name}/history", params={"kind": kind, "limit": 1000}).json()
    return sorted(page["items"], key=lambda t: t["id"])


def _assert_chained(moves: list[tuple[str | None, str | None]], start: str | None, end: str | None) -> None:
    """Each move starts where the one before it ended, and the last ends at the current value."""
    current = start
    for before, after in moves:
        assert before == current, moves
        current = after
    assert current == end, moves


def test_concurrent_production_transitions_leave_one_production(url: str) -> None:
    _register(url, "staged", CLIENTS)

    def promote(client: httpx.Client, i: int) -> httpx.Response:
        body = {"stage": "Production", "archive_existing": True}
        return client.post(f"/api/models/staged/versions/{i + 1}/stage", json=body)

    assert [r.status_code for r in race(url, promote, CLIENTS)] == [200] * CLIENTS
    versions = httpx.get(f"{url}/api/models/staged/versions", params={"limit": 100}).json()["items"]
    stages = {v["version"]: v["stage"] for v in versions}
    assert sorted(stages.values()) == ["Archived"] * (CLIENTS - 1) + ["Production"]
    moves: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
    for entry in _history(url, "staged", "stage"):
        moves[entry["version"]].append((entry["from_value"], entry["to_value"]))
    for version, stage in stages.items():
        _assert_chained(moves[version], "None", stage)


def test_concurrent_stage_rollbacks_never_restore_two_productions(url: str) -> None:
    _register(url, "unstaged", 3)
    for version in ("1", "2", "3"):
        body = {"stage": "Production", "archive_existing": True}
        httpx.post(f"{url}/api/models/unstaged/versions/{version}/stage", json=body).raise_for_status()

    def undo(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/models/unstaged/stages/Production/rollback")

    codes = [r.status_code for r in race(url, undo, CLIENTS)]
    assert set(codes) <= {200, 409} and 200 in codes, codes
    versions = httpx.get(f"{url}/api/models/unstaged/versions").json()["items"]
    assert [v["stage"] for v in versions].count("Production") <= 1


def test_concurrent_alias_sets_and_rollbacks_keep_one_history(url: str) -> None:
    _register(url, "aliased", CLIENTS)

    def move(client: httpx.Client, i: int) -> httpx.Response:
        if i % 3 == 2:
            return client.post("/api/models/aliased/aliases/champion/rollback")
        return client.put("/api/models/aliased/aliases/champion", json={"version": str(i + 1)})

    codes = [r.status_code for r in race(url, move, CLIENTS)]
    assert set(codes) <= {200, 409}, codes
    aliases = {a["alias"]: a["version"] for a in httpx.get(f"{url}/api/models/aliased/aliases").json()}
    history = _history(url, "aliased", "alias")
    _assert_chained([(h["from_value"], h["to_value"]) for h in history], None, aliases.get("champion"))


def test_concurrent_registrations_number_versions_without_gaps(url: str) -> None:
    def register(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/models", json={"name": "numbered", "params": {"client": i}})

    responses = race(url, register, CLIENTS)
    assert [r.status_code for r in responses] == [201] * CLIENTS
    assert sorted(int(r.json()["version"]) for r in responses) == list(range(1, CLIENTS + 1))


def test_concurrent_uploads_of_distinct_files_sum_into_the_version(url: str) -> None:
    _register(url, "multi", 1)

    def upload(client: httpx.Client, i: int) -> httpx.Response:
        path = f"/api/models/multi/versions/1/artifacts/part-{i}.bin"
        return client.put(path, content=bytes([i]) * (i + 1))

    assert [r.status_code for r in race(url, upload, CLIENTS)] == [200] * CLIENTS
    version = httpx.get(f"{url}/api/models/multi/versions/1").json()
    assert len(version["artifacts"]) == CLIENTS
    assert version["size_bytes"] == sum(range(1, CLIENTS + 1))
    manifest = "".join(
        f"{a['path']}\t{a['sha256']}\n" for a in sorted(version["artifacts"], key=lambda a: a["path"])
    )
    assert version["sha256"] == hashlib.sha256(manifest.encode()).hexdigest()
