"""HEAD on downloads (headers, no body) and artifact formats told from the uploaded files."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from registry_helpers import register

XGB_JSON = b'{"learner": {"attributes": {}, "gradient_booster": {"name": "gbtree"}}, "version": [2, 0, 3]}'


def test_head_on_download_sends_size_and_checksum_without_body(client: TestClient) -> None:
    register(client, "headed")
    payload = b"weights" * 1000
    client.put("/api/models/headed/versions/1/artifacts/model.bin", content=payload).raise_for_status()
    base = "/api/models/headed/versions/1"
    for url in (f"{base}/download", f"{base}/artifacts/model.bin"):
        head = client.head(url)
        assert head.status_code == 200, head.text
        assert head.content == b""
        assert head.headers["content-length"] == str(len(payload))
        assert head.headers["x-checksum-sha256"] == hashlib.sha256(payload).hexdigest()
        assert head.headers["accept-ranges"] == "bytes"
    ranged = client.head("/api/models/headed/versions/1/download", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == b""
    assert ranged.headers["content-length"] == "10"
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(payload)}"


def test_head_on_a_multi_file_download_describes_the_zip(client: TestClient) -> None:
    register(client, "zipped")
    for path in ("a.bin", "b.bin"):
        client.put(f"/api/models/zipped/versions/1/artifacts/{path}", content=b"x").raise_for_status()
    head = client.head("/api/models/zipped/versions/1/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/zip"
    assert "content-length" not in head.headers
    assert head.headers["x-checksum-sha256"] == client.get("/api/models/zipped/versions/1").json()["sha256"]


def test_head_on_a_missing_download_is_404(client: TestClient) -> None:
    register(client, "bare")
    assert client.head("/api/models/bare/versions/1/download").status_code == 404
    assert client.head("/api/models/bare/versions/9/download").status_code == 404
    assert client.head("/api/models/absent/versions/1/download").status_code == 404


@pytest.mark.parametrize(
    ("framework", "filename", "content", "expected"),
    [
        ("xgboost", "model.json", XGB_JSON, "xgboost-json"),
        ("other", "booster.json", XGB_JSON, "xgboost-json"),
        ("xgboost", "model.ubj", b"{L\x00\x00", "xgboost-ubj"),
        ("lightgbm", "model.txt", b"tree\nversion=v4\nnum_class=1\n", "lightgbm-txt"),
        ("catboost", "model.cbm", b"CBM1....", "catboost-cbm"),
        ("onnx", "model.onnx", b"\x08\x07\x12\x07pytorch", "onnx"),
        ("sklearn", "model.joblib", b"\x80\x04\x95", "joblib"),
        ("sklearn", "model.bin", b"\x80\x04\x95\x10\x00", "pkl"),
        ("pytorch", "weights.safetensors", b"\x10\x00\x00\x00{}", "safetensors"),
        ("keras", "model.h5", b"\x89HDF\r\n\x1a\n", "keras-h5"),
    ],
)
def test_an_undeclared_format_is_told_from_the_uploaded_file(
    client: TestClient, framework: str, filename: str, content: bytes, expected: str
) -> None:
    register(client, "uploaded", framework=framework)
    put = client.put(f"/api/models/uploaded/versions/1/artifacts/{filename}", content=content)
    assert put.status_code == 200 and put.json()["format"] == expected
    metadata = json.dumps({"name": "posted", "framework": framework})
    posted = client.post("/api/models", data={"metadata": metadata}, files={"file": (filename, content)})
    assert posted.status_code == 201 and posted.json()["format"] == expected


def test_a_declared_format_is_kept_and_unknown_files_keep_the_default(client: TestClient) -> None:
    register(client, "declared", framework="xgboost", format="joblib")
    put = client.put("/api/models/declared/versions/1/artifacts/model.json", content=XGB_JSON)
    assert put.json()["format"] == "joblib"
    register(client, "opaque", framework="sklearn")
    put = client.put("/api/models/opaque/versions/1/artifacts/blob", content=b"\x00\x01")
    assert put.json()["format"] == "pkl"
