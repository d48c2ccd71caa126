"""The OpenAPI tells the truth: a 2xx schema and the common errors on every route, no dangling
$ref, and every string, array, map and integer a client can send is bounded."""

from __future__ import annotations

from pathlib import Path

from mlops_kit.testing.openapi import openapi_problems
from mlops_kit.testing.openapi_bounds import request_problems
from model_serving.app import create_app
from model_serving.settings import ServingSettings


def test_every_operation_documents_its_success_and_errors_and_every_ref_resolves(tmp_path: Path) -> None:
    spec = create_app(ServingSettings(data_dir=tmp_path)).openapi()
    assert openapi_problems(spec, system_paths=("/health", "/ready")) == []


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(ServingSettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []
