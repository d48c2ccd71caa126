from __future__ import annotations

import hashlib
import os
import socket
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from client_helpers import KEYS
from mlops_client import (
    AuthError,
    ConflictError,
    MlopsClient,
    MlopsError,
    NotFoundError,
    RegistryClient,
    ServiceUnavailableError,
    ValidationError,
    request_id,
)


def test_register_get_and_filter(registry: RegistryClient, unique: str) -> None:
    first = registry.register_model(unique, framework="sklearn", metrics={"auc": 0.8}, tags=["nightly"])
    second = registry.register_model(
        unique,
        framework="sklearn",
        metrics={"auc": 0.95},
        lineage={"run_id": "r-1"},
        parent_version=first.version,
    )
    assert (first.version, second.version) == ("1", "2")
    assert registry.get_version(unique, "latest").version == "2"
    assert registry.get_model(unique).version_count == 2
    good = registry.list_versions(unique, metrics=["auc>0.9"])
    assert [v.version for v in good.items] == ["2"]
    assert [m.name for m in registry.list_models(name_prefix=unique, tags=["nightly"]).items] == [unique]
    assert registry.lineage(unique, "2").parent["version"] == "1"  # type: ignore[index]


def test_iterators_walk_every_page(registry: RegistryClient, unique: str) -> None:
    for _ in range(5):
        registry.register_model(unique)
    assert [v.version for v in registry.iter_versions(unique, limit=2)] == ["5", "4", "3", "2", "1"]
    for i in range(3):
        registry.register_model(f"{unique}-m{i}")
    names = [m.name for m in registry.iter_models(name_prefix=f"{unique}-m", limit=2)]
    assert names == [f"{unique}-m{i}" for i in range(3)]


def test_file_upload_and_verified_download(registry: RegistryClient, unique: str, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "model.onnx"
    source.write_bytes(payload)
    registry.register_model(unique, version="1.0.0", framework="onnx")
    seen: list[tuple[int, int | None]] = []
    version = registry.upload_artifact(unique, "1.0.0", source, progress=lambda d, t: seen.append((d, t)))
    assert version.sha256 == hashlib.sha256(payload).hexdigest()
    assert seen[-1] == (len(payload), len(payload))
    target = registry.download_artifact(unique, "1.0.0", tmp_path / "out.onnx")
    assert target.read_bytes() == payload


def test_interrupted_download_resumes_with_range(
    registry: RegistryClient, unique: str, tmp_path: Path
) -> None:
    payload = os.urandom(2_000_000)
    (tmp_path / "m.bin").write_bytes(payload)
    registry.register_model(unique, version="1.0.0")
    registry.upload_artifact(unique, "1.0.0", tmp_path / "m.bin")
    dest = tmp_path / "resumed.bin"
    (tmp_path / "resumed.bin.part").write_bytes(payload[:700_000])
    assert registry.download_artifact(unique, "1.0.0", dest).read_bytes() == payload


def test_directory_upload_and_zip_download(registry: RegistryClient, unique: str, tmp_path: Path) -> None:
    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "data").write_bytes(b"weights" * 1000)
    registry.register_model(unique, version="1.0.0", framework="tensorflow")
    version = registry.upload_artifact(unique, "1.0.0", saved)
    assert sorted(a.path for a in version.artifacts) == ["saved_model.pb", "variables/data"]
    archive = registry.download_artifact(unique, "1.0.0", tmp_path / "model.zip")
    with zipfile.ZipFile(archive) as z:
        assert z.read("variables/data") == b"weights" * 1000
    one = registry.download_artifact(unique, "1.0.0", tmp_path, path="saved_model.pb")
    assert one.read_bytes() == b"graph"


def test_aliases_stages_and_history(registry: RegistryClient, unique: str) -> None:
    for _ in range(2):
        registry.register_model(unique)
    registry.set_alias(unique, "champion", "1")
    registry.set_alias(unique, "champion", "2")
    assert registry.get_alias(unique, "champion").version == "2"
    assert registry.get_version(unique, "@champion").version == "2"
    rolled = registry.rollback_alias(unique, "champion")
    assert rolled is not None and rolled.version == "1"
    registry.transition_stage(unique, "1", "Production")
    registry.transition_stage(unique, "2", "Production", archive_existing=True)
    assert registry.get_version(unique, "1").stage == "Archived"
    assert sorted(registry.rollback_stage(unique, "Production")) == ["1", "2"]
    kinds = [(t.kind, t.action) for t in registry.history(unique).items]
    assert ("alias", "rollback") in kinds and ("stage", "archive_existing") in kinds
    registry.delete_alias(unique, "champion")
    assert registry.list_aliases(unique) == []


def test_alias_state_is_none_until_an_alias_moves_then_the_new_state(
    registry: RegistryClient, unique: str
) -> None:
    for _ in range(2):
        registry.register_model(unique)
    registry.set_alias(unique, "production", "1")
    registry.transition_stage(unique, "1", "Production")
    state = registry.alias_state([unique])
    assert state is not None and state.etag.startswith('"')
    assert state.version_of(unique, "production") == "1" and state.in_stage(unique, "Production") == ["1"]
    assert registry.alias_state([unique], etag=state.etag) is None

    registry.set_alias(unique, "production", "2")
    moved = registry.alias_state([unique], etag=state.etag)
    assert moved is not None and moved.etag != state.etag
    assert [(a.name, a.alias, a.version) for a in moved.aliases] == [(unique, "production", "2")]
    assert registry.alias_state(unique, etag=moved.etag) is None  # one name as a plain string
    everything = registry.alias_state()
    assert everything is not None and everything.version_of(unique, "production") == "2"


def test_alias_state_of_too_many_models_is_a_validation_error(registry: RegistryClient) -> None:
    with pytest.raises(ValidationError) as invalid:
        registry.alias_state([f"m{i}" for i in range(1001)])
    assert invalid.value.status == 422 and invalid.value.code == "VALIDATION_ERROR"


def test_errors_are_typed(registry: RegistryClient, unique: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        registry.get_model(unique)
    assert missing.value.code == "MODEL_NOT_FOUND"
    registry.register_model(unique, version="1.0.0")
    with pytest.raises(ConflictError) as conflict:
        registry.register_model(unique, version="1.0.0")
    assert conflict.value.code == "MODEL_VERSION_EXISTS"
    with pytest.raises(ValidationError) as invalid:
        registry.register_model(unique, framework="cobol")
    assert invalid.value.status == 422 and "scikit-learn" in invalid.value.message


def test_request_id_is_propagated(registry: RegistryClient, unique: str) -> None:
    token = request_id.set("trace-from-caller")
    try:
        response = registry.request("GET", "/health")
    finally:
        request_id.reset(token)
    assert response.headers["x-request-id"] == "trace-from-caller"


def test_auth_errors(secured_url: str, unique: str) -> None:
    with RegistryClient(secured_url, api_key="") as anonymous, pytest.raises(AuthError) as no_key:
        anonymous.list_models()
    assert no_key.value.status == 401
    with RegistryClient(secured_url, api_key=KEYS["viewer"]) as viewer:
        viewer.list_models()
        with pytest.raises(AuthError) as forbidden:
            viewer.register_model(unique)
        assert forbidden.value.status == 403
    with MlopsClient(registry_url=secured_url, api_key=KEYS["editor"]) as mlops:
        assert mlops.registry.register_model(unique).created_by == "editor-user"


class FlakyServer:
    """A real socket server: answers 503 to the first `failures` requests, then 200."""

    def __init__(self, failures: int):
        self.failures, self.requests = failures, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1
                ok = self.requests > self.failures
                body = b'{"status": "ok"}' if ok else b'{"error": {"code": "BUSY", "message": "busy"}}'
                status = b"200 OK" if ok else b"503 Service Unavailable"
                conn.sendall(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nConnection: close"
                    b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )

    def close(self) -> None:
        self.sock.close()


def test_idempotent_calls_retry_through_503s() -> None:
    server = FlakyServer(failures=2)
    try:
        with RegistryClient(server.url) as client:
            assert client.health() == {"status": "ok"}
        assert server.requests == 3
    finally:
        server.close()


def test_non_idempotent_calls_are_not_retried() -> None:
    server = FlakyServer(failures=2)
    try:
        with RegistryClient(server.url) as client, pytest.raises(Exception) as failed:
            client.register_model("x")
        assert getattr(failed.value, "status", None) == 503
        assert server.requests == 1
    finally:
        server.close()


def test_unreachable_service_raises_after_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (
        RegistryClient(f"http://127.0.0.1:{port}", retries=2) as client,
        pytest.raises(ServiceUnavailableError),
    ):
        client.list_models()


def test_register_with_a_file_sends_one_request_and_tells_the_format(
    registry: RegistryClient, unique: str, tmp_path: Path
) -> None:
    source = tmp_path / "model.json"
    source.write_text('{"learner": {"gradient_booster": {}}, "version": [2, 1, 0]}')
    seen: list[tuple[int, int | None]] = []
    version = registry.register_model(
        unique, framework="xgboost", path=source, progress=lambda d, t: seen.append((d, t))
    )
    size = source.stat().st_size
    assert (version.format, version.status, version.size_bytes) == ("xgboost-json", "ready", size)
    assert [a.path for a in version.artifacts] == ["model.json"]
    assert version.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert seen[-1] == (size, size)


def test_register_with_a_directory_uploads_every_file(
    registry: RegistryClient, unique: str, tmp_path: Path
) -> None:
    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"graph")
    (saved / "variables" / "data").write_bytes(b"weights")
    version = registry.register_model(unique, framework="tensorflow", path=saved, artifact_path="tf")
    assert sorted(a.path for a in version.artifacts) == ["tf/saved_model.pb", "tf/variables/data"]
    assert version.format == "tensorflow-savedmodel"


def test_failed_upload_during_registration_leaves_no_version(
    small_upload_registry_url: str, unique: str, tmp_path: Path
) -> None:
    big = tmp_path / "model.pkl"
    big.write_bytes(b"\x80\x04" + b"x" * 5000)
    with RegistryClient(small_upload_registry_url) as registry:
        with pytest.raises(MlopsError) as failed:
            registry.register_model(unique, framework="sklearn", path=big)
        assert failed.value.status == 413
        with pytest.raises(NotFoundError):
            registry.get_model(unique)


def test_head_on_a_download_through_a_real_server(
    registry: RegistryClient, registry_url: str, unique: str, tmp_path: Path
) -> None:
    payload = os.urandom(100_000)
    (tmp_path / "model.onnx").write_bytes(payload)
    registry.register_model(unique, framework="onnx", path=tmp_path / "model.onnx")
    head = httpx.head(f"{registry_url}/api/models/{unique}/versions/1/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(payload))
    assert head.headers["x-checksum-sha256"] == hashlib.sha256(payload).hexdigest()
