from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from model_registry.app import create_app
from model_registry.settings import RegistrySettings

ADMIN, EDITOR, VIEWER = (secrets.token_hex(16) for _ in range(3))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    keys = f"admin:root:{ADMIN},editor:ci-bot:{EDITOR},viewer:dash:{VIEWER}"
    settings = RegistrySettings(data_dir=tmp_path_factory.mktemp("auth"), api_keys=keys)
    with TestClient(create_app(settings)) as client:
        yield client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_requests_without_a_valid_key_are_401(secured: TestClient) -> None:
    assert secured.get("/api/models").status_code == 401
    wrong = secured.get("/api/models", headers=_auth("x" * 32))
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "UNAUTHORIZED"
    assert secured.get("/health").status_code == 200
    assert secured.get("/metrics").status_code == 200


def test_roles_gate_reads_writes_and_admin_actions(secured: TestClient) -> None:
    body = {"name": "guarded", "framework": "onnx"}
    assert secured.get("/api/models", headers=_auth(VIEWER)).status_code == 200
    assert secured.post("/api/models", json=body, headers=_auth(VIEWER)).status_code == 403
    assert secured.post("/api/models", json=body, headers=_auth(EDITOR)).status_code == 201
    assert secured.post("/api/models", json=body, headers={"X-API-Key": EDITOR}).status_code == 201
    assert secured.delete("/api/models/guarded", headers=_auth(EDITOR)).status_code == 403
    assert secured.get("/api/audit-log", headers=_auth(EDITOR)).status_code == 403
    assert secured.delete("/api/models/guarded", headers=_auth(ADMIN)).status_code == 204


def test_audit_log_names_the_key_holder(secured: TestClient) -> None:
    secured.post("/api/models", json={"name": "who", "framework": "onnx"}, headers=_auth(EDITOR))
    entries = secured.get("/api/audit-log?actor=ci-bot", headers=_auth(ADMIN)).json()["items"]
    assert entries and entries[0]["role"] == "editor"
    version = secured.get("/api/models/who/versions/1", headers=_auth(VIEWER)).json()
    assert version["created_by"] == "ci-bot"


def test_keys_are_held_only_as_digests(secured: TestClient) -> None:
    ring = secured.app.state.keyring
    assert all(ADMIN not in str(v) and ADMIN not in k for k, v in ring._by_digest.items())


def test_hashed_keys_in_settings_work(tmp_path: Path) -> None:
    import hashlib

    key = secrets.token_hex(16)
    spec = f"editor:hashed:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    with TestClient(create_app(RegistrySettings(data_dir=tmp_path, api_keys=spec))) as client:
        assert client.get("/api/models", headers=_auth(key)).status_code == 200


def test_placeholder_keys_refuse_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        RegistrySettings(data_dir=tmp_path, api_keys="admin:root:changeme")


def test_binding_follows_auth(tmp_path: Path) -> None:
    assert RegistrySettings(data_dir=tmp_path).bind_host == "127.0.0.1"
    secured = RegistrySettings(data_dir=tmp_path, api_keys=f"admin:a:{ADMIN}")
    assert secured.bind_host == "0.0.0.0"
