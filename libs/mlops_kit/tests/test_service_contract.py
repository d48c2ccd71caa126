"""The kit's error contract held by every service, each run as a real process on embedded storage:
malformed JSON, 405, local docs assets, and clients that hang up mid-upload."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mlops_kit.testing import ServiceProcess, wait_until

SERVICES = [
    "model_registry",
    "experiment_tracking",
    "feature_store",
    "pipeline_orchestrator",
    "ab_testing",
    "model_serving",
]
EXTRA_ENV = {
    "feature_store": {"MLOPS_FEATURE_STORE_ONLINE_STORE": "sqlite"},
    "pipeline_orchestrator": {
        "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "local",
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "1",
    },
}
# per service: JSON routes whose body FastAPI decodes, and routes that read the body themselves
JSON_ROUTES = {
    "model_registry": ["/api/models", "/api/models/m/versions"],
    "experiment_tracking": ["/api/experiments", "/api/experiments/1/runs"],
    "feature_store": ["/api/entities", "/api/features/online"],
    "pipeline_orchestrator": ["/api/pipelines", "/api/triggers/alertmanager"],
    "ab_testing": ["/api/experiments", "/api/events"],
    "model_serving": ["/api/deployments", "/predict", "/invocations", "/v2/models/m/infer"],
}
MALFORMED = b'{\n  "name": "x",\n  "tags": [1, 2,,]\n}'


@pytest.fixture(scope="module", params=SERVICES)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp(request.param)
    env = {"MLOPS_DATA_DIR": str(tmp), **EXTRA_ENV.get(request.param, {})}
    with ServiceProcess(request.param, env=env, tmp=tmp) as process:
        yield process


def test_malformed_json_is_a_400_invalid_json_with_line_and_column(service: ServiceProcess) -> None:
    for path in JSON_ROUTES[service.module]:
        response = httpx.post(
            service.url + path, content=MALFORMED, headers={"content-type": "application/json"}, timeout=10
        )
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "INVALID_JSON", path
        assert (error["details"]["line"], error["details"]["column"]) == (3, 17), path
        assert error["details"]["position"] == MALFORMED.index(b",,]") + 1, path


def test_405_lists_every_method_of_the_path(service: ServiceProcess) -> None:
    spec = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    checked = 0
    for path, operations in spec["paths"].items():
        if "{" in path or path.startswith(("/api/2.0/", "/api/3.0/")):
            continue
        methods = {m.upper() for m in operations if m in ("get", "put", "post", "delete", "patch")}
        unused = next(m for m in ("PATCH", "PUT", "DELETE") if m not in methods)
        response = httpx.request(unused, service.url + path, timeout=10)
        assert response.status_code == 405, (unused, path)
        assert methods <= set(response.headers["allow"].split(", ")), (path, response.headers["allow"])
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        checked += 1
    assert checked


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(service: ServiceProcess, page: str) -> None:
    html = httpx.get(service.url + page, timeout=10).text
    assert "//" not in html.replace("window.location.origin", ""), html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        assert httpx.get(service.url + asset, timeout=10).status_code == 200, asset


def _metric_samples(url: str) -> list[tuple[str, str, str, float]]:
    """(method, route, status, count) of mlops_http_requests_total (route templates hold braces)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    samples = []
    for labels, value in re.findall(r"^mlops_http_requests_total\{(.*)\} (\S+)$", text, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        samples.append((found["method"], found["route"], found["status"], float(value)))
    return samples


def _in_flight(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return float(re.search(r"mlops_http_requests_in_flight\{[^}]*\} (\S+)", text).group(1))  # type: ignore[union-attr]


BOUNDARY = "contractboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="model.csv"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()


def hang_up_mid_upload(url: str, method: str, path: str, content_type: str) -> None:
    """Send the headers and part of a 1 MB body, wait until the handler is reading it, hang up."""
    port = int(url.rsplit(":", 1)[1])
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        part = PART_HEAD if content_type.startswith("multipart/") else b""
        sock.sendall(head.encode() + part + b"a,b\n" * 4096)
        # in flight: this upload and the /metrics request asking
        wait_until(lambda: _in_flight(url) >= 2, timeout=20, what="the upload to reach its handler")


def _client_closed(url: str, method: str) -> float:
    return sum(v for m, _, s, v in _metric_samples(url) if m == method and s == "499")


def _no_server_errors(url: str) -> None:
    errors = [sample for sample in _metric_samples(url) if sample[2].startswith("5")]
    assert not errors, errors


def _no_spooled_files(data_dir: Path) -> None:
    leftovers = [p for p in data_dir.rglob("upload-*") if p.is_file()]
    assert not leftovers, leftovers


@pytest.fixture
def uploads(service: ServiceProcess) -> list[tuple[str, str, str]]:
    """(method, path, content type) of the service's upload routes (its JSON writes where it has
    none), with what they need."""
    url = service.url
    if service.module == "model_registry":
        created = httpx.post(f"{url}/api/models", json={"name": "contract-model", "framework": "sklearn"})
        assert created.status_code == 201, created.text
        version = created.json()["version"]
        return [
            (
                "PUT",
                f"/api/models/contract-model/versions/{version}/artifacts/model.pkl",
                "application/octet-stream",
            ),
            ("POST", f"/api/models/contract-model/versions/{version}/artifacts", MULTIPART),
            ("POST", "/api/models", MULTIPART),
        ]
    if service.module == "experiment_tracking":
        experiment = httpx.post(f"{url}/api/experiments", json={"name": "contract-exp"}).json()
        run = httpx.post(f"{url}/api/experiments/{experiment['id']}/runs", json={}).json()
        return [
            (
                "PUT",
                f"/api/experiments/{experiment['id']}/runs/{run['id']}/artifacts/model.pkl",
                "application/octet-stream",
            ),
            (
                "PUT",
                f"/api/2.0/mlflow-artifacts/artifacts/{experiment['id']}/{run['id']}/artifacts/m.pkl",
                "application/octet-stream",
            ),
        ]
    if service.module == "feature_store":
        entity = httpx.post(f"{url}/api/entities", json={"name": "user", "join_keys": ["user_id"]})
        features = [{"name": "age", "type": "int"}]
        feature_set = httpx.post(
            f"{url}/api/feature-sets", json={"name": "contract_set", "entity": "user", "features": features}
        )
        assert (entity.status_code, feature_set.status_code) == (201, 201), feature_set.text
        return [
            ("POST", "/api/feature-sets/contract_set/rows?format=csv", "application/octet-stream"),
            ("POST", "/api/feature-sets/contract_set/rows", MULTIPART),
        ]
    if service.module == "pipeline_orchestrator":
        return [("POST", "/api/pipelines", "application/json")]
    return [("POST", "/api/experiments", "application/json"), ("POST", "/api/events", "application/json")]


def test_a_client_hanging_up_mid_upload_is_a_499_and_writes_nothing(
    service: ServiceProcess, uploads: list[tuple[str, str, str]]
) -> None:
    for method, path, content_type in uploads:
        before = _client_closed(service.url, method)
        hang_up_mid_upload(service.url, method, path, content_type)
        wait_until(
            lambda: _client_closed(service.url, method) == before + 1,  # noqa: B023 - polled right here
            timeout=20,
            what=f"{method} {path} to be counted as a client-closed request",
        )
        _no_server_errors(service.url)
    _no_spooled_files(Path(service.env["MLOPS_DATA_DIR"]))
    assert "Traceback" not in service.log_tail(1_000_000)
    _nothing_half_written(service)


def _nothing_half_written(service: ServiceProcess) -> None:
    url = service.url
    if service.module == "model_registry":
        models = httpx.get(f"{url}/api/models", timeout=10).json()["items"]
        assert [m["name"] for m in models] == ["contract-model"]
        version = httpx.get(f"{url}/api/models/contract-model/versions/1", timeout=10).json()
        assert not version.get("artifacts"), version
    if service.module == "feature_store":
        statistics = httpx.get(f"{url}/api/feature-sets/contract_set/statistics", timeout=10).json()
        assert statistics["rows"] == 0, statistics
    if service.module == "experiment_tracking":
        for experiment in httpx.get(f"{url}/api/experiments", timeout=10).json()["items"]:
            runs = httpx.get(f"{url}/api/experiments/{experiment['id']}/runs", timeout=10).json()["items"]
            for run in runs:
                listing = f"{url}/api/experiments/{experiment['id']}/runs/{run['id']}/artifacts"
                assert httpx.get(listing, timeout=10).json()["files"] == [], run
