"""`POST /api/uploads` and `GET /api/artifacts?uri=`: a file from the caller's machine becomes an
artifact URI a run reads on its worker (the training template's `data_uri`), on both backends."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from orchestrator_helpers import define, start, wait_run

CSV = b"x1,x2,label\n" + b"".join(f"{i % 7}.5,{i % 3},{i % 2}\n".encode() for i in range(60))


def _upload(api: TestClient, name: str, body: bytes) -> dict:
    response = api.post(
        "/api/uploads",
        params={"name": name},
        content=body,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_upload_comes_back_byte_for_byte_under_a_new_uri_each_time(api: TestClient) -> None:
    first = _upload(api, "patients.csv", CSV)
    assert first["uri"].startswith("mlops-artifacts://uploads/") and first["uri"].endswith("/patients.csv")
    assert first["size"] == len(CSV) and first["sha256"] == hashlib.sha256(CSV).hexdigest()
    second = _upload(api, "patients.csv", b"other")
    assert second["uri"] != first["uri"]  # an upload is never replaced
    got = api.get("/api/artifacts", params={"uri": first["uri"]})
    assert got.status_code == 200 and got.content == CSV
    assert api.get("/api/artifacts", params={"uri": second["uri"]}).content == b"other"


@pytest.mark.parametrize("name", ["../x.csv", "a/b.csv", ".hidden", "", "x" * 201, "sp ace.csv"])
def test_a_name_that_is_not_one_plain_file_name_is_refused(api: TestClient, name: str) -> None:
    response = api.post("/api/uploads", params={"name": name}, content=b"1")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_an_empty_upload_is_refused_and_stores_nothing(api: TestClient) -> None:
    response = api.post("/api/uploads", params={"name": "empty.csv"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "EMPTY_UPLOAD"


@pytest.mark.parametrize(
    ("uri", "status", "code"),
    [
        ("mlops-artifacts://uploads/nothing/here.csv", 404, "ARTIFACT_NOT_FOUND"),
        ("/etc/passwd", 422, "INVALID_ARTIFACT_URI"),
        ("mlops-artifacts://../../etc/passwd", 422, "INVALID_ARTIFACT_URI"),
        ("mlops-artifacts:///etc/passwd", 422, "INVALID_ARTIFACT_URI"),
        ("mlops-artifacts://uploads/" + "x" * 300 + "/a.csv", 422, "INVALID_ARTIFACT_URI"),
    ],
)
def test_downloading_what_is_not_an_artifact_is_a_clear_4xx(
    api: TestClient, uri: str, status: int, code: str
) -> None:
    response = api.get("/api/artifacts", params={"uri": uri})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_run_reads_an_upload_by_its_uri_on_its_worker(api: TestClient) -> None:
    uploaded = _upload(api, "table.csv", CSV)
    define(
        api,
        "reads-upload",
        [
            {
                "name": "load",
                "kind": "python",
                "callable": "pipeline_orchestrator.templates.training:load_dataset",
                "inputs": {"data_uri": "{{ params.data_uri }}", "label_column": "label"},
                "cache": False,
            }
        ],
        parameters=[{"name": "data_uri", "type": "string"}],
    )
    run = wait_run(api, start(api, "reads-upload", {"data_uri": uploaded["uri"]}), timeout=120)
    assert run["state"] == "succeeded", run
    outputs = api.get(f"/api/runs/{run['id']}").json()["tasks"][0]["outputs"]
    assert outputs["dataset"] == "table.csv" and outputs["n_train"] + outputs["n_test"] == 60, outputs
