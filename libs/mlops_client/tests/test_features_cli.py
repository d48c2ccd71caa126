from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from mlops_client.cli import app
from typer.testing import CliRunner

runner = CliRunner()
WHEN = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--feature-store-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def _define(url: str, name: str) -> None:
    code, out, err = _run(url, "features", "entities", "create", name, "--join-key", "user_id")
    assert code == 0, err
    code, out, err = _run(
        url,
        "features", "sets", "create", name,
        "--feature", "age:int", "--feature", "score:float", "--entity", name, "--ttl", "7d",
    )  # fmt: skip
    assert code == 0 and f"created feature set {name} version 1" in out, err


def test_define_ingest_materialize_with_progress_and_serve(
    feature_store_url: str, unique: str, tmp_path: Path
) -> None:
    _define(feature_store_url, unique)
    code, out, _ = _run(feature_store_url, "features", "sets", "get", unique, "--json")
    assert code == 0 and json.loads(out)["ttl_seconds"] == 7 * 86400
    csv = tmp_path / "users.csv"
    csv.write_text(f"user_id,event_timestamp,age,score\nu1,{WHEN},31,1.5\nu2,{WHEN},45,\n")
    code, out, err = _run(feature_store_url, "features", "ingest", unique, str(csv))
    assert code == 0 and "ingested 2 row(s)" in out, err
    assert "upload users.csv" in err, "the upload progress bar goes to stderr"

    code, out, err = _run(feature_store_url, "features", "materialize", unique, "--poll", "0.05")
    assert code == 0, err
    assert f"materialize {unique}" in err and "2/2" in err, "the job's progress bar goes to stderr"
    assert "SUCCEEDED: 2/2 entities" in out
    code, out, _ = _run(feature_store_url, "features", "jobs", "list", "--set", unique, "--json")
    assert [j["status"] for j in json.loads(out)] == ["SUCCEEDED"]

    code, out, err = _run(
        feature_store_url,
        "features",
        "serve",
        f"{unique}:age,score",
        "--entity",
        "u1",
        "-e",
        "u2",
        "-e",
        "u3",
    )
    assert code == 0, err
    u1, u2, u3 = (next(line for line in out.splitlines() if f" {u} " in line) for u in ("u1", "u2", "u3"))
    assert "31" in u1 and "1.5" in u1
    assert "45" in u2 and "MISSING" in u2, "a null value is shown by its status"
    assert u3.count("MISSING") == 2
    code, out, _ = _run(feature_store_url, "features", "serve", f"{unique}:age", "-e", "u1", "--json")
    assert json.loads(out)["results"][0]["values"] == {"age": 31}


def test_push_historical_and_stats(feature_store_url: str, unique: str, tmp_path: Path) -> None:
    _define(feature_store_url, unique)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"user_id": "u1", "event_timestamp": WHEN, "age": 20, "score": 2.0}]))
    code, out, err = _run(feature_store_url, "features", "push", unique, str(rows))
    assert code == 0 and "1 online value(s) updated" in out, err
    entities = tmp_path / "entities.csv"
    entities.write_text(f"user_id,event_timestamp\nu1,{WHEN}\nnobody,{WHEN}\n")
    target = tmp_path / "train.parquet"
    code, out, err = _run(
        feature_store_url, "features", "historical", str(entities), "-f", f"{unique}:age", "-o", str(target)
    )
    assert code == 0, err
    assert pq.read_table(target).column("age").to_pylist() == [20, None]
    code, out, _ = _run(
        feature_store_url, "features", "historical", str(entities), "-f", f"{unique}:*", "--json"
    )
    assert [r["score"] for r in json.loads(out)] == [2.0, None]
    code, out, _ = _run(feature_store_url, "features", "stats", unique)
    assert code == 0 and "age" in out and "int" in out


def test_apply_from_a_json_file_adds_a_version(feature_store_url: str, unique: str, tmp_path: Path) -> None:
    definition = tmp_path / "def.json"
    definition.write_text(json.dumps({"name": unique, "features": [{"name": "age", "type": "int"}]}))
    code, out, err = _run(feature_store_url, "features", "sets", "apply", "--file", str(definition))
    assert code == 0 and "version 1" in out, err
    definition.write_text(json.dumps({"name": unique, "features": {"age": "int", "city": "string"}}))
    code, out, _ = _run(feature_store_url, "features", "sets", "apply", "--file", str(definition))
    assert code == 0 and "version 2" in out
    code, out, _ = _run(feature_store_url, "features", "sets", "list", "--prefix", unique)
    assert code == 0 and "city:string" in out


def test_errors_exit_non_zero_with_the_message(feature_store_url: str, unique: str, tmp_path: Path) -> None:
    code, _, err = _run(feature_store_url, "features", "materialize", unique)
    assert code == 1 and "FEATURE_SET_NOT_FOUND" in err
    _define(feature_store_url, unique)
    rows = tmp_path / "bad.json"
    rows.write_text(json.dumps({"rows": [{"user_id": "u1", "event_timestamp": WHEN, "age": "old"}]}))
    code, _, err = _run(feature_store_url, "features", "ingest", unique, str(rows))
    assert code == 1 and "TYPE_MISMATCH" in err and "age" in err
    code, _, err = _run(feature_store_url, "features", "sets", "create", "x", "--feature", "age")
    assert code == 2 and "name:type" in err
