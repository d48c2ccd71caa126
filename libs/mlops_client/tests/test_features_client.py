from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlops_client import (
    ConflictError,
    FeatureStoreClient,
    MlopsClient,
    NotFoundError,
    ValidationError,
)
from mlops_client.features_models import FeatureSet

NOW = datetime.now(UTC).replace(microsecond=0)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _user_set(features: FeatureStoreClient, name: str, *, ttl: str | None = None) -> FeatureSet:
    features.create_entity(f"{name}-user", join_keys=["user_id"])
    return features.create_feature_set(name, {"age": "int", "score": "float"}, entity=f"{name}-user", ttl=ttl)


def test_entities_and_feature_sets_are_created_versioned_and_deleted(
    features: FeatureStoreClient, unique: str
) -> None:
    entity = features.create_entity(unique, join_keys=["user_id"], description="a user", tags={"t": "1"})
    assert features.get_entity(unique).join_keys == ["user_id"] == entity.join_keys
    assert unique in {e.name for e in features.iter_entities()}
    created = features.create_feature_set(unique, {"age": "int64"}, entity=unique, ttl="7d", owner="ana")
    assert (created.version, created.ttl_seconds, created.features[0].type) == (1, 7 * 86400, "int")
    same = features.apply_feature_set(unique, {"age": "int"}, entity=unique)
    assert same.latest_version == 1
    applied = features.apply_feature_set(unique, {"age": "int", "city": "string"}, entity=unique)
    assert applied.latest_version == 2
    third = features.add_version(unique, [{"name": "age", "type": "float"}], breaking=True, change="retype")
    assert third.version == 3 and [v.version for v in features.versions(unique)] == [1, 2, 3]
    assert [f.name for f in features.get_feature_set(unique, version=2).features] == ["age", "city"]
    assert features.update_feature_set(unique, description="v3", ttl=0).ttl_seconds is None
    assert [fs.name for fs in features.iter_feature_sets(entity=unique)] == [unique]
    with pytest.raises(ConflictError) as in_use:
        features.delete_entity(unique)
    assert in_use.value.code == "IN_USE"
    features.delete_feature_set(unique)
    features.delete_entity(unique)
    with pytest.raises(NotFoundError) as gone:
        features.get_entity(unique)
    assert gone.value.code == "ENTITY_NOT_FOUND"


def test_rows_ingest_from_dicts_csv_and_parquet_files(
    features: FeatureStoreClient, unique: str, tmp_path: Path
) -> None:
    _user_set(features, unique)
    rows = [{"user_id": "u1", "event_timestamp": NOW - timedelta(hours=3), "age": 30, "score": 0.5}]
    assert features.ingest(unique, rows).rows_written == 1
    csv = tmp_path / "users.csv"
    csv.write_text(f"user_id,event_timestamp,age,score\nu2,{_iso(NOW)},41,1.5\nu3,{_iso(NOW)},52,\n")
    sent: list[tuple[int, int | None]] = []
    result = features.ingest(unique, csv, progress=lambda done, total: sent.append((done, total)))
    assert result.rows_written == 2 and sent[-1] == (csv.stat().st_size, csv.stat().st_size)
    parquet = tmp_path / "users.parquet"
    table = pa.table(
        {
            "user_id": ["u4"],
            "event_timestamp": pa.array([NOW], pa.timestamp("us", tz="UTC")),
            "age": [63],
            "score": [2.5],
        }
    )
    pq.write_table(table, parquet)
    assert features.ingest(unique, parquet, version=1).rows_written == 1
    stats = features.statistics(unique)
    assert stats.rows == 4
    assert (stats.features["age"]["count"], stats.features["score"]["nulls"]) == (4, 1)
    assert stats.features["age"]["min"] == 30 and stats.features["age"]["max"] == 63


def test_materialize_reports_growing_progress_then_values_are_served(
    features: FeatureStoreClient, unique: str, tmp_path: Path
) -> None:
    _user_set(features, unique, ttl="7d")
    csv = tmp_path / "many.csv"
    lines = [f"u{i:05d},{_iso(NOW - timedelta(hours=1))},{i % 90},{i / 10}" for i in range(4500)]
    csv.write_text("user_id,event_timestamp,age,score\n" + "\n".join(lines) + "\n")
    features.ingest(unique, csv)
    features.ingest(unique, [{"user_id": "old", "event_timestamp": NOW - timedelta(days=8), "age": 99}])
    job = features.materialize(unique)
    assert job.status in ("PENDING", "RUNNING", "SUCCEEDED")
    seen: list[tuple[int, int | None]] = []
    done = features.wait_for_job(
        job.id, timeout=60, poll_interval=0.02, progress=lambda d, t: seen.append((d, t))
    )
    assert done.status == "SUCCEEDED" and done.rows_done == done.rows_total == 4501
    counts = [d for d, _ in seen]
    assert counts == sorted(counts) and counts[-1] == 4501
    assert features.get_job(job.id).percent == 100.0
    assert job.id in [j.id for j in features.list_jobs(feature_set=unique).items]

    online = features.online(["u00007", "nobody", "old"], features=[f"{unique}:age", f"{unique}:score"])
    assert online.features == ["age", "score"]
    first, missing, expired = online.results
    assert first.values == {"age": 7, "score": 0.7} and first.statuses["age"] == "PRESENT"
    assert first.event_timestamps["age"] == _iso(NOW - timedelta(hours=1))
    assert missing.statuses == {"age": "MISSING", "score": "MISSING"} and missing.values["age"] is None
    assert expired.statuses["age"] == "EXPIRED" and expired.values["age"] is None
    served = features.serve(["u00010", "u00011"], ["age", "score"], feature_set=unique)
    assert [r.values for r in served.results] == [{"age": 10, "score": 1.0}, {"age": 11, "score": 1.1}]
    by_columns = features.get_online_features({"user_id": ["u00012"]}, features=[f"{unique}:*"])
    assert by_columns == [{"age": 12, "score": 1.2}]


def test_pushed_rows_are_served_and_older_ones_do_not_win(features: FeatureStoreClient, unique: str) -> None:
    _user_set(features, unique)
    pushed = features.push(unique, [{"user_id": "u1", "event_timestamp": NOW, "age": 20, "score": 1.0}])
    assert (pushed.rows_written, pushed.online_updated) == (1, 1)
    older = features.push(
        unique, [{"user_id": "u1", "event_timestamp": NOW - timedelta(hours=1), "age": 19, "score": 0.9}]
    )
    assert older.online_updated == 0
    assert features.get_online_features(["u1"], features=["age"], feature_set=unique) == [{"age": 20}]
    many = [{"user_id": f"b{i}", "event_timestamp": NOW, "age": i} for i in range(1500)]
    assert features.push(unique, many).rows_written == 1500


def test_historical_keeps_unmatched_rows_as_nulls_and_writes_parquet(
    features: FeatureStoreClient, unique: str, tmp_path: Path
) -> None:
    _user_set(features, unique)
    features.ingest(
        unique,
        [
            {"user_id": "u1", "event_timestamp": NOW - timedelta(days=2), "age": 30, "score": 1.0},
            {"user_id": "u1", "event_timestamp": NOW - timedelta(days=1), "age": 31, "score": 2.0},
        ],
    )
    entity_rows: list[dict[str, Any]] = [
        {"user_id": "u1", "event_timestamp": _iso(NOW - timedelta(hours=36)), "label": 1},
        {"user_id": "u1", "event_timestamp": _iso(NOW), "label": 0},
        {"user_id": "nobody", "event_timestamp": _iso(NOW), "label": 0},
    ]
    refs = [f"{unique}:age", f"{unique}:score"]
    result = features.historical(entity_rows, features=refs)
    assert result.columns == ["user_id", "event_timestamp", "label", "age", "score"]
    assert [row[3:] for row in result.rows] == [[30, 1.0], [31, 2.0], [None, None]]
    assert result.records()[2]["age"] is None

    csv = tmp_path / "entities.csv"
    csv.write_text(
        "user_id,event_timestamp\n" + "".join(f"{r['user_id']},{r['event_timestamp']}\n" for r in entity_rows)
    )
    from_file = features.historical(csv, features=refs)
    assert [row[2:] for row in from_file.rows] == [[30, 1.0], [31, 2.0], [None, None]]
    out = features.historical(csv, features=refs, out_path=tmp_path / "train.parquet")
    assert out == tmp_path / "train.parquet" and not (tmp_path / "train.parquet.part").exists()
    table = pq.read_table(out)
    assert table.column("age").to_pylist() == [30, 31, None]


def test_feature_services_pin_features_and_serve_them(features: FeatureStoreClient, unique: str) -> None:
    _user_set(features, unique)
    features.push(unique, [{"user_id": "u1", "event_timestamp": NOW, "age": 40, "score": 4.0}])
    service = features.create_feature_service(unique, [f"{unique}:age"], description="churn model")
    assert [(f.feature_set, f.feature, f.version) for f in service.features] == [(unique, "age", 1)]
    assert features.get_feature_service(unique, version=1).description == "churn model"
    assert unique in {s.name for s in features.list_feature_services(limit=1000).items}
    assert features.get_online_features(["u1"], feature_service=unique) == [{"age": 40}]
    with pytest.raises(ValueError):
        features.online(["u1"])
    features.delete_feature_service(unique)
    with pytest.raises(NotFoundError) as gone:
        features.get_feature_service(unique)
    assert gone.value.code == "FEATURE_SERVICE_NOT_FOUND"


def test_unknown_feature_set_is_a_not_found_error(features: FeatureStoreClient, unique: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        features.statistics(unique)
    assert (missing.value.status, missing.value.code) == (404, "FEATURE_SET_NOT_FOUND")


def test_rows_that_do_not_fit_the_schema_are_a_validation_error(
    features: FeatureStoreClient, unique: str
) -> None:
    _user_set(features, unique)
    bad = [
        {"user_id": "u1", "event_timestamp": _iso(NOW), "age": 1},
        {"user_id": "u2", "event_timestamp": _iso(NOW), "age": "old"},
    ]
    with pytest.raises(ValidationError) as refused:
        features.ingest(unique, bad)
    assert (refused.value.status, refused.value.code) == (422, "TYPE_MISMATCH")
    assert refused.value.details["errors"][0]["column"] == "age"
    assert features.statistics(unique).rows == 0, "nothing was written"


def test_mlops_client_reaches_the_feature_store(feature_store_url: str, unique: str) -> None:
    with MlopsClient(feature_store_url=feature_store_url) as mlops:
        assert mlops.features.create_entity(unique, join_keys=["k"]).name == unique
