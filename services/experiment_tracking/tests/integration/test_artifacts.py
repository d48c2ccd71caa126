"""Run artifacts through the native API and MLflow's proxy, on local files and S3: one store."""

from __future__ import annotations

import hashlib
import os

from fastapi.testclient import TestClient
from tracking_helpers import experiment, run, run_path


def test_upload_list_download_roundtrip(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    data = os.urandom(300_000)
    put = client.put(f"{run_path(created)}/artifacts/model/weights.bin", content=data)
    assert put.status_code == 200 and put.json()["sha256"] == hashlib.sha256(data).hexdigest()
    client.put(f"{run_path(created)}/artifacts/notes.txt", content=b"hi")
    top = client.get(f"{run_path(created)}/artifacts").json()["files"]
    assert top == [{"path": "model", "is_dir": True}, {"path": "notes.txt", "is_dir": False, "file_size": 2}]
    inner = client.get(f"{run_path(created)}/artifacts", params={"path": "model"}).json()["files"]
    assert inner == [{"path": "weights.bin", "is_dir": False, "file_size": 300_000}]
    download = client.get(f"{run_path(created)}/artifacts/model/weights.bin")
    assert download.content == data and download.headers["content-length"] == "300000"


def test_native_uploads_are_visible_through_the_mlflow_proxy(client: TestClient) -> None:
    exp = experiment(client)
    created = run(client, exp["id"])
    client.put(f"{run_path(created)}/artifacts/a.txt", content=b"abc")
    root = f"{exp['id']}/{created['id']}/artifacts"
    listed = client.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": root}).json()
    assert listed == {"files": [{"path": "a.txt", "is_dir": False, "file_size": 3}]}
    assert client.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/a.txt").content == b"abc"


def test_missing_artifacts_and_bad_paths_are_4xx(client: TestClient) -> None:
    created = run(client, experiment(client)["id"])
    assert client.get(f"{run_path(created)}/artifacts/nope.txt").status_code == 404
    client.put(f"{run_path(created)}/artifacts/folder/a.txt", content=b"a")
    assert client.get(f"{run_path(created)}/artifacts/folder").status_code == 404, "a folder is not a file"
    assert client.put(f"{run_path(created)}/artifacts/a/../../x", content=b"x").status_code in (400, 404)
    assert client.put(f"/api/experiments/0/runs/{'0' * 32}/artifacts/x.txt", content=b"x").status_code == 404
    proxied = client.get("/api/2.0/mlflow-artifacts/artifacts/0/nothing/here.txt")
    assert proxied.status_code == 404 and proxied.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
