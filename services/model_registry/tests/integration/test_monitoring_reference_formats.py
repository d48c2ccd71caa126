"""Reference profiles from Parquet, CSV and JSON, as raw bodies or multipart parts, read batch by
batch (issue 13) — on SQLite and PostgreSQL: the same data gives the same profile in every form,
and errors name the row and column in the whole input."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from model_registry.monitoring import columnar
from model_registry.monitoring.profile import build_profile, build_profile_chunks
from registry_helpers import register

REF = "/api/models/churn/versions/1/monitoring/reference"
PARQUET = {"content-type": "application/vnd.apache.parquet"}
CSV = {"content-type": "text/csv"}
KINDS = {"age": "numeric", "score": "numeric", "country": "categorical", "churned": "boolean"}


def _data(n: int, seed: int = 3) -> dict[str, list[Any]]:
    """Ints, floats (some missing), categories (some missing) and booleans."""
    rng = np.random.default_rng(seed)
    score = [None if i % 17 == 0 else round(float(v), 6) for i, v in enumerate(rng.normal(0, 1, n))]
    country = [None if i % 23 == 0 else str(v) for i, v in enumerate(rng.choice(["fr", "de", "it"], n))]
    return {
        "age": [int(v) for v in rng.integers(18, 90, n)],
        "score": score,
        "country": country,
        "churned": [bool(v) for v in rng.integers(0, 2, n)],
    }


def _records(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _parquet(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def _csv(columns: dict[str, list[Any]]) -> bytes:
    def cell(v: Any) -> str:
        return (
            ""
            if v is None
            else str(v).lower()
            if isinstance(v, bool)
            else repr(v)
            if isinstance(v, float)
            else str(v)
        )

    lines = [",".join(columns)] + [
        ",".join(cell(v) for v in row) for row in zip(*columns.values(), strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def _stored(client: TestClient) -> dict[str, Any]:
    response = client.get(REF)
    assert response.status_code == 200, response.text
    profile: dict[str, Any] = response.json()["profile"]
    return profile


def _error(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.fixture
def churn(client: TestClient) -> TestClient:
    register(client, "churn", version="1")
    return client


def test_parquet_csv_and_json_of_the_same_data_give_the_same_profile(churn: TestClient) -> None:
    data = _data(25_000)
    chunks = [{k: v[i : i + 10_000] for k, v in data.items()} for i in range(0, 25_000, 10_000)]
    expected = json.loads(build_profile_chunks(chunks, KINDS).to_json())  # the core, 10,000 rows at a time
    assert churn.put(REF, json=_records(data)).status_code == 200
    assert _stored(churn) == expected
    body = _parquet(pa.table(data), row_group_size=7_000)  # row groups across the chunks
    parquet = churn.put(REF, content=body, headers=PARQUET)
    assert parquet.status_code == 200, parquet.text
    assert parquet.json()["rows"] == 25_000
    assert {c["name"]: c["kind"] for c in parquet.json()["columns"]} == KINDS
    assert _stored(churn) == expected  # bit for bit: whatever the blocks, the same chunks
    assert churn.put(REF, content=_csv(data), headers=CSV).status_code == 200
    assert _stored(churn) == expected


def test_a_csv_read_in_many_blocks_infers_types_over_the_whole_file(
    churn: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 4096)  # about 150 rows a block
    data = _data(3_000)
    data["code"] = [str(i % 7) for i in range(3_000)]
    data["code"][2_500] = "x7"  # numbers for 2,500 rows, then text: the column is categorical
    response = churn.put(REF, content=_csv(data), headers=CSV)
    assert response.status_code == 200, response.text
    kinds = {**KINDS, "code": "categorical"}
    assert {c["name"]: c["kind"] for c in response.json()["columns"]} == kinds
    assert _stored(churn) == json.loads(build_profile(data, kinds).to_json())


def test_a_bad_value_deep_in_a_csv_or_parquet_names_its_row_and_column(
    churn: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(columnar, "BLOCK_BYTES", 4096)
    data = _data(3_000)
    data["score"][2_345] = "n/a"  # type: ignore[call-overload]
    declared = churn.put(REF, content=_csv(data), headers=CSV, params={"types": "score:numeric"})
    assert _error(declared)["details"] == {"column": "score", "row": 2_345, "expected": "numeric"}
    text = pa.table({"x": [str(i) for i in range(25_000)]})
    rows = text.column("x").to_pylist()
    rows[21_000] = "twenty"
    bad = churn.put(
        REF, content=_parquet(pa.table({"x": rows})), headers=PARQUET, params={"types": "x:numeric"}
    )
    assert _error(bad)["code"] == "COLUMN_TYPE_MISMATCH"
    assert (_error(bad)["details"]["column"], _error(bad)["details"]["row"]) == ("x", 21_000)
    flags = pa.table({"flag": ["true"] * 12_000 + ["maybe"]})
    boolean = churn.put(REF, content=_parquet(flags), headers=PARQUET, params={"types": "flag:boolean"})
    assert _error(boolean)["details"] == {"column": "flag", "row": 12_000, "expected": "boolean"}
    lines = _csv(_data(2_000)).split(b"\n")
    lines[1_801] = b"1,2"  # data row 1,800
    short = churn.put(REF, content=b"\n".join(lines), headers=CSV)
    assert _error(short)["details"] == {"row": 1_800}
    assert churn.get(REF).status_code == 404  # nothing half-written


def test_parquet_types_come_from_the_arrow_schema_or_are_declared(churn: TestClient) -> None:
    when = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(24)]
    table = pa.table(
        {
            "n": pa.array(range(24), pa.int16()),
            "d": pa.array([str(i % 3) for i in range(24)]).dictionary_encode(),
            "when": pa.array(when, pa.timestamp("us", tz="UTC")),
        }
    )
    refused = churn.put(REF, content=_parquet(table), headers=PARQUET)
    assert _error(refused)["code"] == "INVALID_REFERENCE_DATA"
    assert _error(refused)["details"]["column"] == "when"
    declared = churn.put(
        REF, content=_parquet(table), headers=PARQUET, params={"types": ["when:categorical", "n:categorical"]}
    )
    assert declared.status_code == 200, declared.text
    assert {c["name"]: c["kind"] for c in declared.json()["columns"]} == {
        "n": "categorical",
        "d": "categorical",
        "when": "categorical",
    }
    profile = _stored(churn)
    assert {c["name"]: c["frequencies"] for c in profile["columns"]}["d"] == {"0": 8, "1": 8, "2": 8}
    nested = pa.table({"v": pa.array([[1, 2], [3]])})
    assert _error(churn.put(REF, content=_parquet(nested), headers=PARQUET))["details"]["column"] == "v"
    unknown = churn.put(REF, content=_parquet(table), headers=PARQUET, params={"types": "nope:numeric"})
    assert _error(unknown)["details"] == {"columns": ["nope"]}


def test_parquet_is_recognised_by_its_other_media_types_and_its_magic(churn: TestClient) -> None:
    data = _data(500)
    body = _parquet(pa.table(data))
    for content_type in ("application/x-parquet", "application/octet-stream"):
        response = churn.put(REF, content=body, headers={"content-type": content_type})
        assert response.status_code == 200, (content_type, response.text)
    octet = {"content-type": "application/octet-stream"}
    assert churn.put(REF, content=_csv(data), headers=octet, params={"format": "csv"}).status_code == 200
    assert _stored(churn) == json.loads(build_profile(data, KINDS).to_json())
    unknown = churn.put(REF, content=_csv(data), headers=octet)
    assert _error(unknown)["code"] == "INVALID_REFERENCE_DATA"
    garbage = churn.put(REF, content=b"PAR1 not really", headers=PARQUET)
    assert _error(garbage)["code"] == "INVALID_REFERENCE_DATA"
    empty = churn.put(REF, content=_parquet(pa.table({"a": pa.array([], pa.int64())})), headers=PARQUET)
    assert _error(empty)["message"] == "the reference data has no rows"


def test_multipart_file_parts_by_content_type_or_file_name_with_types_fields(churn: TestClient) -> None:
    data = _data(800)
    expected = json.loads(build_profile(data, KINDS).to_json())
    parts: list[tuple[str, str, str]] = [
        ("train.csv", "application/octet-stream", "csv"),
        ("train", "application/vnd.apache.parquet", "parquet"),
        ("train.parquet", "application/octet-stream", "parquet"),
        ("rows.json", "application/json", "json"),
    ]
    bodies = {
        "csv": _csv(data),
        "parquet": _parquet(pa.table(data)),
        "json": json.dumps(_records(data)).encode(),
    }
    for filename, content_type, fmt in parts:
        response = churn.put(REF, files={"file": (filename, bodies[fmt], content_type)})
        assert response.status_code == 200, (filename, response.text)
        assert _stored(churn) == expected
    typed = churn.put(
        REF, files={"file": ("t.csv", bodies["csv"], "text/csv")}, data={"types": ["age:categorical"]}
    )
    assert typed.status_code == 200, typed.text
    assert {c["name"]: c["kind"] for c in typed.json()["columns"]}["age"] == "categorical"
    no_file = churn.put(REF, files={"other": ("t.csv", bodies["csv"], "text/csv")})
    assert _error(no_file)["code"] == "INVALID_REFERENCE_DATA"
    unknown = churn.put(REF, files={"file": ("t.bin", b"\x00\x01", "application/octet-stream")})
    assert _error(unknown)["code"] == "INVALID_REFERENCE_DATA"


def test_uploads_over_the_limit_are_413s(churn: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = churn.app.state.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "max_upload_bytes", 10_000)
    body = _csv(_data(2_000))
    assert _error(churn.put(REF, content=body, headers=CSV), 413)["code"] == "PAYLOAD_TOO_LARGE"
    octet = {"content-type": "application/octet-stream"}
    chunks = iter([body[:5_000], body[5_000:]])  # no Content-Length: refused while streaming
    streamed = churn.put(REF, content=chunks, headers=octet, params={"format": "csv"})
    assert _error(streamed, 413)["code"] == "PAYLOAD_TOO_LARGE"
    form = churn.put(REF, files={"file": ("t.csv", body, "text/csv")})
    assert _error(form, 413)["code"] == "PAYLOAD_TOO_LARGE"
    monkeypatch.setattr(settings, "max_json_bytes", 1_000)
    big_json = churn.put(
        REF, files={"file": ("t.json", json.dumps(_records(_data(50))).encode(), "application/json")}
    )
    assert _error(big_json, 413)["code"] == "PAYLOAD_TOO_LARGE"
    assert churn.get(REF).status_code == 404


def test_quoted_cells_with_commas_and_newlines_are_one_value(churn: TestClient) -> None:
    body = b'\xef\xbb\xbfcity,n\n"Paris, FR",1\n"New\nYork",2\n""\n'  # a byte-order mark first
    response = churn.put(REF, content=body.replace(b'""\n', b'"",3\n'), headers=CSV)
    assert response.status_code == 200, response.text
    columns = {c["name"]: c for c in _stored(churn)["columns"]}
    assert columns["city"]["frequencies"] == {"Paris, FR": 1, "New\nYork": 1}
    assert columns["city"]["missing"] == 1 and columns["n"]["count"] == 3
