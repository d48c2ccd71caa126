"""`GET /api/aliases`: the alias and stage state of some models behind a strong ETag, so model
serving learns that an alias moved with a conditional request answered 304 until it does."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from model_registry.aliases import service
from model_registry.app import create_app
from model_registry.settings import RegistrySettings
from registry_helpers import register

STATE = "/api/aliases"


def _models(client: TestClient, *names: str, versions: int = 3) -> None:
    for name in names:
        for _ in range(versions):
            register(client, name)


def _alias(client: TestClient, name: str, alias: str, version: str) -> None:
    response = client.put(f"/api/models/{name}/aliases/{alias}", json={"version": version})
    assert response.status_code == 200, response.text


def _state(client: TestClient, *models: str, etag: str | None = None) -> tuple[int, dict | None, str]:
    headers = {"If-None-Match": etag} if etag else {}
    response = client.get(STATE, params={"model": list(models)}, headers=headers)
    assert response.status_code in (200, 304), response.text
    body = response.json() if response.status_code == 200 else None
    return response.status_code, body, response.headers["etag"]


def test_state_lists_aliases_sorted_with_an_etag_that_hashes_the_body(client: TestClient) -> None:
    _models(client, "fraud", "churn")
    _alias(client, "fraud", "production", "2")
    _alias(client, "fraud", "canary", "3")
    _alias(client, "churn", "production", "1")
    response = client.get(STATE)
    assert response.status_code == 200
    assert response.headers["etag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    rows = [(a["name"], a["alias"], a["version"]) for a in response.json()["aliases"]]
    assert rows == [("churn", "production", "1"), ("fraud", "canary", "3"), ("fraud", "production", "2")]
    assert all(a["updated_at"].endswith("+00:00") for a in response.json()["aliases"])


def test_etag_is_stable_until_an_alias_moves_and_a_match_is_304_without_body(client: TestClient) -> None:
    _models(client, "fraud")
    _alias(client, "fraud", "production", "1")
    _, first, etag = _state(client, "fraud")
    assert _state(client, "fraud")[2] == etag
    not_modified = client.get(STATE, params={"model": "fraud"}, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b"" and not_modified.headers["etag"] == etag

    _alias(client, "fraud", "production", "2")
    status, moved, new_etag = _state(client, "fraud", etag=etag)
    assert (status, new_etag != etag) == (200, True)
    assert first and moved
    assert [a["version"] for a in first["aliases"]] == ["1"]
    assert [a["version"] for a in moved["aliases"]] == ["2"]
    assert _state(client, "fraud", etag=new_etag)[0] == 304


def test_rollback_and_delete_of_an_alias_change_the_etag(client: TestClient) -> None:
    _models(client, "fraud")
    _alias(client, "fraud", "production", "1")
    _alias(client, "fraud", "production", "2")
    etags = [_state(client, "fraud")[2]]
    assert client.post("/api/models/fraud/aliases/production/rollback").status_code == 200
    etags.append(_state(client, "fraud")[2])
    assert client.delete("/api/models/fraud/aliases/production").status_code == 204
    status, body, etag = _state(client, "fraud", etag=etags[-1])
    assert status == 200 and body == {"aliases": [], "stages": []}
    assert len({*etags, etag}) == 3


@pytest.mark.parametrize(
    "header",
    [
        "*",
        '"0000", {etag}',
        '{etag} , "ffff"',
        "W/{etag}",
        '"a","b",W/{etag}',
    ],
)
def test_if_none_match_lists_star_and_weak_tags_are_matched_per_rfc_9110(
    client: TestClient, header: str
) -> None:
    _models(client, "fraud", versions=1)
    _alias(client, "fraud", "production", "1")
    etag = _state(client)[2]
    response = client.get(STATE, headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == 304, response.text


@pytest.mark.parametrize("header", ['"0000"', '"0000", W/"1111"', "garbage", '""'])
def test_if_none_match_naming_no_current_etag_gets_the_state(client: TestClient, header: str) -> None:
    _models(client, "fraud", versions=1)
    _alias(client, "fraud", "production", "1")
    response = client.get(STATE, headers={"If-None-Match": header})
    assert response.status_code == 200
    assert [a["alias"] for a in response.json()["aliases"]] == ["production"]


def test_filtering_by_model_leaves_other_models_and_their_moves_out(client: TestClient) -> None:
    _models(client, "fraud", "churn", "spam")
    for name in ("fraud", "churn", "spam"):
        _alias(client, name, "production", "1")
    _, body, etag = _state(client, "fraud", "spam", "unknown-model")
    assert body and sorted({a["name"] for a in body["aliases"]}) == ["fraud", "spam"]
    _alias(client, "churn", "production", "2")
    assert _state(client, "fraud", "spam", etag=etag)[0] == 304
    assert _state(client, "spam", "fraud", "fraud", etag=etag)[0] == 304  # order and repeats: same state
    _alias(client, "spam", "production", "3")
    assert _state(client, "fraud", "spam", etag=etag)[0] == 200


def test_stages_list_every_staged_version_and_a_transition_changes_the_etag(client: TestClient) -> None:
    _models(client, "fraud", "churn")
    _, _, empty = _state(client)
    client.post("/api/models/fraud/versions/1/stage", json={"stage": "Production"})
    client.post("/api/models/fraud/versions/2/stage", json={"stage": "Staging"})
    client.post("/api/models/churn/versions/3/stage", json={"stage": "Staging"})
    _, body, staged = _state(client, etag=empty)
    assert body and body["aliases"] == []
    assert body["stages"] == [
        {"name": "churn", "stage": "Staging", "version": "3"},
        {"name": "fraud", "stage": "Production", "version": "1"},
        {"name": "fraud", "stage": "Staging", "version": "2"},
    ]
    moved = client.post(
        "/api/models/fraud/versions/2/stage", json={"stage": "Production", "archive_existing": True}
    )
    assert moved.status_code == 200
    status, body, promoted = _state(client, "fraud", etag=staged)
    assert status == 200 and promoted != staged and body
    assert [(s["stage"], s["version"]) for s in body["stages"]] == [("Archived", "1"), ("Production", "2")]
    assert client.post("/api/models/fraud/stages/Production/rollback").status_code == 200
    _, body, _ = _state(client, "fraud", etag=promoted)
    assert body and [(s["stage"], s["version"]) for s in body["stages"]] == [
        ("Production", "1"),
        ("Staging", "2"),
    ]


def test_versions_of_one_stage_are_ordered_by_version_number(client: TestClient) -> None:
    _models(client, "fraud", versions=11)
    for version in ("11", "2", "10"):
        client.post(f"/api/models/fraud/versions/{version}/stage", json={"stage": "Archived"})
    _, body, _ = _state(client, "fraud")
    assert body and [s["version"] for s in body["stages"]] == ["2", "10", "11"]


def test_more_than_a_thousand_models_is_a_422_in_the_platform_shape(client: TestClient) -> None:
    response = client.get(STATE, params={"model": [f"m{i}" for i in range(1001)]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and "model" in error["message"]
    fits = client.get(STATE, params={"model": [f"m{i}" for i in range(1000)]})
    assert fits.status_code == 200 and fits.json() == {"aliases": [], "stages": []}


@pytest.mark.parametrize("name", ["m" * 129, "bad name", "-leading"])
def test_a_model_name_that_cannot_exist_is_a_422(client: TestClient, name: str) -> None:
    response = client.get(STATE, params={"model": ["fine", name]})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_state_over_the_row_bound_is_refused_not_cut(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _models(client, "fraud")
    for alias in ("a", "b"):
        _alias(client, "fraud", alias, "1")
    client.post("/api/models/fraud/versions/1/stage", json={"stage": "Staging"})
    monkeypatch.setattr(service, "MAX_ROWS", 2)
    response = client.get(STATE)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "ALIAS_STATE_TOO_LARGE"
    assert client.get(STATE, params={"model": "other"}).status_code == 200


ADMIN, VIEWER = secrets.token_hex(16), secrets.token_hex(16)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys = f"admin:root:{ADMIN},viewer:serving:{VIEWER}"
    settings = RegistrySettings(data_dir=Path(tmp_path_factory.mktemp("state-auth")), api_keys=keys)
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_viewer_key_may_read_the_state_and_no_key_may_not(secured: TestClient) -> None:
    admin, viewer = {"Authorization": f"Bearer {ADMIN}"}, {"Authorization": f"Bearer {VIEWER}"}
    assert secured.post("/api/models", json={"name": "guarded"}, headers=admin).status_code == 201
    secured.put("/api/models/guarded/aliases/production", json={"version": "1"}, headers=admin)
    response = secured.get(STATE, headers=viewer)
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["aliases"]] == ["guarded"]
    assert secured.get(STATE).status_code == 401
