"""The OpenAPI bounds check (issue 12) holds A/B testing too: every string, array, map and
integer a client can send is bounded, and every list refuses offsets past what storage holds."""

from __future__ import annotations

from pathlib import Path

from ab_helpers import create
from ab_testing.app import create_app
from ab_testing.settings import AbTestingSettings
from fastapi.testclient import TestClient
from mlops_kit.testing.openapi_bounds import offset_failures, paginated_operations, request_problems


def test_every_request_string_array_map_and_integer_is_bounded(tmp_path: Path) -> None:
    spec = create_app(AbTestingSettings(data_dir=tmp_path)).openapi()
    assert request_problems(spec) == []


def test_every_list_endpoint_refuses_offsets_and_limits_out_of_range(ab: TestClient) -> None:
    create(ab, "bounded")
    spec = ab.app.openapi()
    assert len(paginated_operations(spec)) >= 2
    assert offset_failures(ab, spec, {"experiment": "bounded"}) == []
