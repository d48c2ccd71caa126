"""/docs, /redoc and /openapi.json: assets served locally, open or behind a key as configured."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from mlops_kit.app import ServiceSpec, create_service_app
from mlops_kit.audit import audit_table
from mlops_kit.settings import ServiceSettings
from sqlalchemy import MetaData

KEY = "viewer-key-0123456789abcdef"
DOCS = ["/docs", "/redoc", "/openapi.json"]
router = APIRouter(prefix="/api/items")


@router.get("")
def list_items() -> list[str]:
    return []


class DocsSettings(ServiceSettings):
    service_name: ClassVar[str] = "docs_app"


def _client(tmp: Path, **values: object) -> TestClient:
    settings = DocsSettings(data_dir=tmp, migrate_on_start=False, **values)
    spec = ServiceSpec(
        title="docs demo",
        version="0",
        routers=[router],
        audit_table=audit_table(MetaData()),
        migrations=tmp,
        uses_artifacts=False,
    )
    return TestClient(create_service_app(settings, spec), raise_server_exceptions=False)


@pytest.fixture
def open_client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path) as client:
        yield client


@pytest.fixture
def keyed_client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, api_keys=f"viewer:docs-reader:{KEY}") as client:
        yield client


def page_urls(html: str) -> list[str]:
    """Every URL a docs page makes the browser load (src=, href=, and spec/url strings)."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(
        r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_external_host_and_their_assets_are_served(
    open_client: TestClient, page: str
) -> None:
    html = open_client.get(page).text
    assert "http://" not in html and "https://" not in html and "//" not in html.replace("://", "")
    urls = page_urls(html)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), url
        response = open_client.get(url)
        assert response.status_code == 200, url
        assert response.content


def test_unknown_docs_asset_is_a_404_in_the_error_shape(open_client: TestClient) -> None:
    response = open_client.get("/docs/assets/..%2Fcore.py")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_docs_are_open_when_no_keys_are_configured(open_client: TestClient) -> None:
    for path in DOCS:
        assert open_client.get(path).status_code == 200, path
    assert "/api/items" in open_client.get("/openapi.json").json()["paths"]


def test_docs_and_their_assets_need_a_key_once_keys_are_configured(keyed_client: TestClient) -> None:
    html = keyed_client.get("/docs", headers={"Authorization": f"Bearer {KEY}"}).text
    for path in [*DOCS, *page_urls(html)]:
        refused = keyed_client.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert keyed_client.get(path, headers={"X-API-Key": KEY}).status_code == 200, path
    for path in ["/health", "/ready", "/metrics"]:
        assert keyed_client.get(path).status_code == 200, path


def test_docs_public_setting_opens_the_docs_but_not_the_api(tmp_path: Path) -> None:
    with _client(tmp_path, api_keys=f"viewer:docs-reader:{KEY}", docs_public=True) as client:
        for path in DOCS:
            assert client.get(path).status_code == 200, path
        assert client.get("/api/items").status_code == 401
