"""The OpenAPI tells the truth: a 2xx schema and the common errors on every route, no dangling $ref."""

from __future__ import annotations

from pathlib import Path

from feature_store.app import create_app
from feature_store.settings import FeatureStoreSettings
from mlops_kit.testing.openapi import openapi_problems


def test_every_operation_documents_its_success_and_errors_and_every_ref_resolves(tmp_path: Path) -> None:
    spec = create_app(FeatureStoreSettings(data_dir=tmp_path)).openapi()
    assert openapi_problems(spec, system_paths=("/health", "/ready")) == []
