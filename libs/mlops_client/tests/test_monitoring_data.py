"""Reference data encoding (no server): what goes on the wire for each kind of data, and the one
switch to Parquet."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlops_client import monitoring_data
from mlops_client.monitoring_data import CSV, JSON, PARQUET, reference_body


def _bytes(data: object, **types: str) -> tuple[str, dict[str, str], bytes]:
    body = reference_body(data, types)
    return body.content_type, body.query_types, b"".join(body.chunks())


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"x": [0.1, None, 1 / 3], "zip": ["02110", None, "10001"], "ok": [True, False, True], "n": [1, 2, 3]}
    )


def test_with_parquet_off_frames_and_tables_go_as_csv_with_the_types_csv_would_lose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(monitoring_data, "SEND_PARQUET", False)
    for data in (_frame(), pa.Table.from_pandas(_frame(), preserve_index=False)):
        content_type, types, raw = _bytes(data, n="categorical")
        assert content_type == CSV
        assert types == {"zip": "categorical", "ok": "boolean", "n": "categorical"}
        back = pd.read_csv(io.BytesIO(raw), dtype={"zip": str})
        assert back["x"].tolist()[::2] == [0.1, 1 / 3] and back["zip"].tolist()[0] == "02110"


def test_records_go_as_json_with_their_types_inside() -> None:
    content_type, types, raw = _bytes([{"x": float("nan"), "zip": "02110"}], zip="categorical")
    assert (content_type, types) == (JSON, {})
    assert json.loads(raw) == {"rows": [{"x": None, "zip": "02110"}], "types": {"zip": "categorical"}}


def test_files_by_suffix(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "r.csv", index=False)
    assert _bytes(tmp_path / "r.csv")[2] == (tmp_path / "r.csv").read_bytes()  # streamed as it is
    (tmp_path / "r.jsonl").write_text('{"x": 1}\n\n{"x": 2}\n')
    assert json.loads(_bytes(tmp_path / "r.jsonl")[2]) == [{"x": 1}, {"x": 2}]
    pq.write_table(pa.Table.from_pandas(_frame(), preserve_index=False), tmp_path / "r.parquet")
    content_type, _, raw = _bytes(tmp_path / "r.parquet")
    assert content_type == PARQUET and raw == (tmp_path / "r.parquet").read_bytes()  # as it is
    with pytest.raises(ValueError, match="unknown column types"):
        reference_body(tmp_path / "r.csv", {"x": "text"})


def test_frames_tables_and_files_go_as_parquet(tmp_path: Path) -> None:
    assert monitoring_data.SEND_PARQUET  # the registry takes Parquet uploads
    pq.write_table(pa.Table.from_pandas(_frame(), preserve_index=False), tmp_path / "r.parquet")
    for data in (_frame(), pa.Table.from_pandas(_frame(), preserve_index=False), tmp_path / "r.parquet"):
        content_type, _, raw = _bytes(data)
        assert content_type == PARQUET
        assert pq.read_table(io.BytesIO(raw)).column("zip").to_pylist() == ["02110", None, "10001"]
