from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import pytest
from fastapi.testclient import TestClient
from mlops_kit.storage import ArtifactStore
from model_registry.settings import RegistrySettings
from registry_helpers import register, stored_keys
from sqlalchemy import text

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _upload(
    client: TestClient,
    name: str = "art",
    version: str = "1",
    path: str = "model.pkl",
    data: bytes = PAYLOAD,
    **headers: str,
):
    return client.put(
        f"/api/models/{name}/versions/{version}/artifacts/{path}", content=data, headers=headers
    )


def test_upload_records_size_and_checksum_and_download_streams_it(client: TestClient) -> None:
    register(client, "art")
    uploaded = _upload(client)
    assert uploaded.status_code == 200, uploaded.text
    version = uploaded.json()
    assert (version["size_bytes"], version["sha256"], version["status"]) == (len(PAYLOAD), SHA, "ready")
    download = client.get("/api/models/art/versions/1/download")
    assert download.status_code == 200
    assert download.content == PAYLOAD
    assert download.headers["content-length"] == str(len(PAYLOAD))
    assert download.headers["x-checksum-sha256"] == SHA


def test_range_requests_return_partial_content(client: TestClient) -> None:
    register(client, "art")
    _upload(client)
    part = client.get("/api/models/art/versions/1/download", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == PAYLOAD[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(PAYLOAD)}"
    tail = client.get("/api/models/art/versions/1/download", headers={"Range": "bytes=-10"})
    assert tail.content == PAYLOAD[-10:]
    resume = client.get("/api/models/art/versions/1/download", headers={"Range": "bytes=299990-"})
    assert resume.content == PAYLOAD[299990:]
    beyond = client.get("/api/models/art/versions/1/download", headers={"Range": "bytes=999999-"})
    assert beyond.status_code == 416


def test_declared_checksum_mismatch_stores_nothing(client: TestClient, store: ArtifactStore) -> None:
    register(client, "art")
    before = stored_keys(store)
    response = _upload(client, **{"X-Checksum-Sha256": "0" * 64})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "CHECKSUM_MISMATCH"
    assert client.get("/api/models/art/versions/1").json()["artifacts"] == []
    assert stored_keys(store) == before
    assert _upload(client, **{"X-Checksum-Sha256": SHA}).status_code == 200


def test_oversized_upload_is_413_and_stores_nothing(
    client: TestClient,
    store: ArtifactStore,
    settings: RegistrySettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(client, "art")
    monkeypatch.setattr(settings, "max_upload_bytes", 1000)
    before = stored_keys(store)
    response = _upload(client)
    assert response.status_code == 413
    assert response.json()["error"]["details"]["max_bytes"] == 1000

    def chunked():
        yield PAYLOAD[:600]
        yield PAYLOAD[600:1200]

    streamed = client.put("/api/models/art/versions/1/artifacts/model.pkl", content=chunked())
    assert streamed.status_code == 413
    assert stored_keys(store) == before
    assert client.get("/api/models/art/versions/1").json()["status"] == "registered"


def test_artifacts_are_immutable(client: TestClient) -> None:
    register(client, "art")
    _upload(client)
    again = _upload(client, data=b"other")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ARTIFACT_EXISTS"
    assert client.get("/api/models/art/versions/1/download").content == PAYLOAD


def test_bad_paths_and_missing_targets(client: TestClient) -> None:
    register(client, "art")
    assert client.put("/api/models/art/versions/1/artifacts/a//b", content=b"x").status_code == 422
    assert client.put("/api/models/art/versions/1/artifacts/../x", content=b"x").status_code in (404, 422)
    assert _upload(client, version="9").status_code == 404
    assert _upload(client, name="ghost").status_code == 404
    assert client.get("/api/models/art/versions/1/download").json()["error"]["code"] == "ARTIFACT_NOT_FOUND"


def test_multipart_registration_with_artifact_in_one_call(client: TestClient) -> None:
    metadata = {"name": "bundle", "version": "2.0.0", "framework": "sklearn", "sha256": SHA}
    response = client.post(
        "/api/models", data={"metadata": json.dumps(metadata)}, files={"file": ("model.joblib", PAYLOAD)}
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == SHA
    assert client.get("/api/models/bundle/versions/2.0.0/download").content == PAYLOAD


def test_failed_multipart_registration_leaves_no_metadata_and_no_object(
    client: TestClient,
    store: ArtifactStore,
) -> None:
    before = stored_keys(store)
    bad_checksum = {"name": "bundle", "framework": "sklearn", "sha256": "f" * 64}
    response = client.post(
        "/api/models", data={"metadata": json.dumps(bad_checksum)}, files={"file": ("model.pkl", PAYLOAD)}
    )
    assert response.status_code == 422
    bad_meta = client.post(
        "/api/models", data={"metadata": json.dumps({"name": "x y"})}, files={"file": ("model.pkl", PAYLOAD)}
    )
    assert bad_meta.status_code == 422
    assert client.get("/api/models").json()["total"] == 0
    assert stored_keys(store) == before


def test_directory_upload_and_zip_download(client: TestClient) -> None:
    register(client, "tf", framework="tensorflow")
    files = [
        ("file", ("saved_model/saved_model.pb", b"graph")),
        ("file", ("saved_model/variables/variables.index", PAYLOAD[:1000])),
    ]
    uploaded = client.post("/api/models/tf/versions/1/artifacts", files=files)
    assert uploaded.status_code == 200, uploaded.text
    assert [a["path"] for a in uploaded.json()["artifacts"]] == [
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
    ]
    archive = client.get("/api/models/tf/versions/1/download")
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        assert z.read("saved_model/saved_model.pb") == b"graph"
        assert z.read("saved_model/variables/variables.index") == PAYLOAD[:1000]
    one = client.get("/api/models/tf/versions/1/download?path=saved_model/saved_model.pb")
    assert one.content == b"graph"
    same = client.get("/api/models/tf/versions/1/artifacts/saved_model/saved_model.pb")
    assert same.content == b"graph"


def test_failed_metadata_write_removes_the_stored_artifact(
    client: TestClient,
    store: ArtifactStore,
) -> None:
    """The database refuses the artifact row (a real trigger): the object must not stay behind."""
    register(client, "art")
    db = client.app.state.db
    with db.writer.begin() as conn:
        if db.is_sqlite:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON artifacts "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON artifacts FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
    before = stored_keys(store)
    try:
        response = _upload(client)
    finally:
        with db.writer.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse" + ("" if db.is_sqlite else " ON artifacts")))
            if not db.is_sqlite:
                conn.execute(text("DROP FUNCTION refuse()"))
    assert response.status_code in (409, 503)
    assert stored_keys(store) == before
    assert client.get("/api/models/art/versions/1").json()["artifacts"] == []


def test_deleting_a_version_removes_its_artifacts(client: TestClient, store: ArtifactStore) -> None:
    register(client, "art")
    before = stored_keys(store)
    _upload(client)
    assert len(stored_keys(store) - before) == 1
    assert client.delete("/api/models/art/versions/1").status_code == 204
    assert stored_keys(store) == before


def test_artifact_list_names_every_file(client: TestClient) -> None:
    register(client, "art")
    _upload(client, path="model.pkl")
    _upload(client, path="extra/config.json", data=b"{}")
    listed = client.get("/api/models/art/versions/1/artifacts").json()
    assert [(a["path"], a["size_bytes"]) for a in listed] == [
        ("extra/config.json", 2),
        ("model.pkl", len(PAYLOAD)),
    ]
    assert client.get("/api/models/art/versions/1").json()["size_bytes"] == len(PAYLOAD) + 2


@pytest.mark.parametrize("url", ["/api/models", "/api/models/bundle/versions"])
@pytest.mark.parametrize(
    "form", [b"--b--\r\n", b'--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n\r\n--b--\r\n']
)
def test_multipart_registration_without_metadata_is_refused_and_creates_nothing(
    client: TestClient, url: str, form: bytes
) -> None:
    response = client.post(url, content=form, headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "METADATA_REQUIRED"
    assert client.get("/api/models").json()["total"] == 0
