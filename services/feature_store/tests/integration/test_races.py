"""Registry read-modify-writes raced by 10 clients against a real process, on SQLite and
PostgreSQL: schema versions, creations by apply, the default entity and feature services each
take effect once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from mlops_kit.testing import BACKENDS, race, service_on

CLIENTS = 10
BASE = [{"name": "age", "type": "int64"}]
GROWN = [*BASE, {"name": "city", "type": "string"}]


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with service_on("feature_store", request.param, tmp_path_factory.mktemp(request.param)) as found:
        yield found


def _versions(url: str, name: str) -> list[dict]:
    response = httpx.get(f"{url}/api/feature-sets/{name}/versions")
    assert response.status_code == 200, response.text
    return response.json()


def test_concurrent_registrations_of_one_new_schema_version_make_one(url: str) -> None:
    httpx.post(f"{url}/api/feature-sets", json={"name": "grown", "features": BASE}).raise_for_status()

    def grow(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/feature-sets/grown/versions", json={"features": GROWN})

    responses = race(url, grow, CLIENTS)
    assert sorted(r.status_code for r in responses) == [201] + [409] * (CLIENTS - 1)
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"ALREADY_EXISTS"}
    assert [v["version"] for v in _versions(url, "grown")] == [1, 2]


def test_concurrent_applies_of_a_new_feature_set_create_it_once(url: str) -> None:
    def apply(client: httpx.Client, _: int) -> httpx.Response:
        return client.put("/api/feature-sets/applied", json={"features": GROWN})

    codes = sorted(r.status_code for r in race(url, apply, CLIENTS))
    assert codes == [200] * (CLIENTS - 1) + [201]
    assert [v["version"] for v in _versions(url, "applied")] == [1]


def test_concurrent_additive_versions_number_without_gaps(url: str) -> None:
    httpx.post(f"{url}/api/feature-sets", json={"name": "wide", "features": BASE}).raise_for_status()

    def add(client: httpx.Client, i: int) -> httpx.Response:
        features = [*BASE, *({"name": f"f{j}", "type": "float64"} for j in range(i + 1))]
        return client.put("/api/feature-sets/wide", json={"features": features, "breaking": True})

    assert [r.status_code for r in race(url, add, CLIENTS)] == [200] * CLIENTS
    versions = _versions(url, "wide")
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    latest = httpx.get(f"{url}/api/feature-sets/wide").json()
    assert latest["latest_version"] == len(versions) and latest["features"] == versions[-1]["features"]


def test_concurrent_first_feature_sets_share_one_default_entity(url: str) -> None:
    def create(client: httpx.Client, i: int) -> httpx.Response:
        return client.post("/api/feature-sets", json={"name": f"first-{i}", "features": BASE})

    assert [r.status_code for r in race(url, create, CLIENTS)] == [201] * CLIENTS
    entities = [e["name"] for e in httpx.get(f"{url}/api/entities").json()["items"]]
    assert entities.count("default") == 1


def test_concurrent_feature_service_registrations_version_once(url: str) -> None:
    httpx.post(f"{url}/api/feature-sets", json={"name": "served", "features": GROWN}).raise_for_status()
    body = {"name": "svc", "features": ["served:age"]}

    def register(client: httpx.Client, _: int) -> httpx.Response:
        return client.post("/api/feature-services", json=body)

    codes = sorted(r.status_code for r in race(url, register, CLIENTS))
    assert codes == [200] * (CLIENTS - 1) + [201]
    versions = httpx.get(f"{url}/api/feature-services/svc/versions").json()
    assert [v["version"] for v in versions] == [1]
