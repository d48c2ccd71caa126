"""The prediction log's storage (issue 13): read-your-writes, late labels, the column-by-column
parser's 422s, retention pruning and the hourly aggregates that answer once raw rows are gone —
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from model_registry.monitoring.maintenance import Retention, run_once
from model_registry.tables import LogSegment, MonitoringBucket, PredictionRecord
from registry_helpers import register
from sqlalchemy import func, select

BASE = "/api/models/churn"
REF = f"{BASE}/versions/1/monitoring/reference"
RETENTION = Retention(
    raw=timedelta(days=7), labels=timedelta(days=35), aggregates=timedelta(days=400), sample_rows=1000
)


def _rows(prefix: str, hour: int, shift: float, n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    shares = [0.7, 0.2, 0.1] if shift else None
    return [
        {
            "request_id": f"{prefix}-{i}",
            "version": "1",
            "timestamp": f"2026-01-01T{hour:02d}:{i * 60 // n:02d}:{i % 60:02d}Z",
            "features": {
                "f1": float(rng.normal(shift, 1.0)),
                "f2": str(rng.choice(["a", "b", "c"], p=shares)),
            },
            "prediction": int(rng.integers(0, 2)),
            "probability": float(rng.uniform()),
        }
        for i in range(n)
    ]


def _setup(client: TestClient) -> None:
    register(client, "churn", version="1")
    rng = np.random.default_rng(1)
    reference = [
        {"f1": float(x), "f2": str(c), "prediction": int(p)}
        for x, c, p in zip(
            rng.normal(0, 1, 2000), rng.choice(["a", "b", "c"], 2000), rng.integers(0, 2, 2000), strict=True
        )
    ]
    assert client.put(REF, json=reference).status_code == 200


def _hour(hour: int) -> dict[str, str]:
    return {
        "version": "1",
        "start": f"2026-01-01T{hour:02d}:00:00Z",
        "end": f"2026-01-01T{hour + 1:02d}:00:00Z",
    }


def _count(client: TestClient, table: Any) -> int:
    with client.app.state.db.session(write=False) as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _maintain(client: TestClient, now: datetime | None = None) -> Any:
    return run_once(client.app.state.db, RETENTION, now)  # type: ignore[attr-defined]


def test_every_accepted_batch_is_in_the_next_drift_answer(client: TestClient) -> None:
    _setup(client)
    for k in range(4):
        rows = _rows(f"b{k}", 1, 0.0, 250, seed=10 + k)
        assert client.post(f"{BASE}/predictions", json=rows).json()["accepted"] == 250
        window = client.get(f"{BASE}/monitoring/drift", params=_hour(1)).json()["window"]
        assert window["count"] == 250 * (k + 1) and window["source"] == "raw"


def test_labels_sent_after_later_batches_join_their_predictions(client: TestClient) -> None:
    _setup(client)
    early, late = _rows("early", 1, 0.0, 300, seed=3), _rows("late", 2, 0.0, 300, seed=4)
    client.post(f"{BASE}/predictions", json=early)
    client.post(f"{BASE}/predictions", json=late)
    labels = [{"request_id": r["request_id"], "label": r["prediction"]} for r in early[:200]]
    assert client.post(f"{BASE}/labels", json=labels).json()["labelled"] == 200
    again = [{"request_id": "early-0", "label": 1 - early[0]["prediction"]}]  # a later label replaces
    assert client.post(f"{BASE}/labels", json=again).json()["labelled"] == 1
    body = client.get(f"{BASE}/monitoring/performance", params={"version": "1"}).json()
    assert body["window"]["count"] == 200
    assert body["performance"]["metrics"]["accuracy"]["value"] == 199 / 200


def test_the_column_parser_names_row_and_field_of_a_bad_value(client: TestClient) -> None:
    register(client, "churn", version="1")
    rows = _rows("p", 1, 0.0, 10, seed=5)
    cases: list[tuple[int, str, Any, list[Any]]] = [
        (3, "f1", [1, 2], ["body", 3, "features", "f1"]),
        (6, "f2", "x" * 1025, ["body", 6, "features", "f2"]),
        (8, "f1", 2**63, ["body", 8, "features", "f1"]),
    ]
    for row, key, value, loc in cases:
        bad = [dict(r, features=dict(r["features"])) for r in rows]
        bad[row]["features"][key] = value
        answer = client.post(f"{BASE}/predictions", json=bad)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"]["errors"][0]["loc"] == loc
    odd = [dict(r) for r in rows]
    odd[4] = {**odd[4], "timestamp": "yesterday"}
    wrapped = client.post(f"{BASE}/predictions", json={"predictions": odd})
    assert wrapped.json()["error"]["details"]["errors"][0]["loc"] == ["body", "predictions", 4, "timestamp"]
    missing = client.post(f"{BASE}/predictions", json=[{"version": "1", "features": {}}])
    assert missing.json()["error"]["details"]["errors"][0]["loc"] == ["body", 0, "request_id"]
    assert _count(client, PredictionRecord) == 0 and _count(client, LogSegment) == 0  # nothing half-written


def test_mixed_types_nulls_and_ragged_rows_round_trip_through_segments(client: TestClient) -> None:
    _setup(client)
    rows = _rows("m", 1, 0.0, 60, seed=6)
    rows[5]["features"] = {"f1": None, "f2": "a", "extra": True}
    rows[7]["features"] = {"f2": None}
    rows[9]["features"]["f1"] = 2**60  # beyond float64's exact integers: kept as logged
    client.post(f"{BASE}/predictions", json=rows)
    drift = client.get(f"{BASE}/monitoring/drift", params=_hour(1)).json()
    f1 = next(f for f in drift["features"] if f["feature"] == "f1")
    assert f1["missing_share"] == 2 / 60 and drift["unknown_columns"] == ["extra"]


def test_the_variant_serving_logged_filters_a_drift_window(client: TestClient) -> None:
    _setup(client)
    calm = [dict(r, variant="control") for r in _rows("c", 1, 0.0, 300, seed=11)]
    moved = [dict(r, variant="treatment") for r in _rows("t", 1, 1.5, 300, seed=12)]
    plain = _rows("n", 1, 0.0, 50, seed=13)  # logged without a variant: in no variant's window
    mixed = [row for pair in zip(calm, moved, strict=True) for row in pair]
    assert client.post(f"{BASE}/predictions", json=mixed).json()["accepted"] == 600
    assert client.post(f"{BASE}/predictions", json=plain).json()["accepted"] == 50
    answers = {
        v: client.get(f"{BASE}/monitoring/drift", params={**_hour(1), "variant": v}).json()
        for v in ("control", "treatment", "none-such")
    }
    assert answers["control"]["window"] | {"variant": None} == {
        **answers["control"]["window"],
        "count": 300,
        "variant": None,
    }
    assert answers["control"]["window"]["variant"] == "control"
    assert answers["treatment"]["window"]["count"] == 300
    assert not answers["control"]["dataset"]["drifted"] and answers["treatment"]["dataset"]["drifted"]
    assert answers["none-such"]["window"]["count"] == 0
    everything = client.get(f"{BASE}/monitoring/drift", params=_hour(1)).json()
    assert everything["window"]["count"] == 650 and everything["window"]["variant"] is None
    bad = client.post(f"{BASE}/predictions", json=[dict(plain[0], request_id="v", variant=7)])
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"][0]["loc"] == ["body", 0, "variant"]


def test_retention_prunes_raw_rows_and_the_aggregates_give_the_raw_verdicts(client: TestClient) -> None:
    _setup(client)
    client.post(f"{BASE}/predictions", json=_rows("calm", 1, 0.0, 2000, seed=7))
    client.post(f"{BASE}/predictions", json=_rows("moved", 2, 1.0, 2000, seed=8))
    raw = {h: client.get(f"{BASE}/monitoring/drift", params=_hour(h)).json() for h in (1, 2)}
    done = _maintain(client)  # rolls up (unless the app's own loop just did), prunes nothing yet
    assert done.segments_pruned == 0 and _count(client, MonitoringBucket) == 2
    assert client.get(f"{BASE}/monitoring/drift", params=_hour(1)).json() == raw[1]  # still raw
    done = _maintain(client, datetime.now(UTC) + timedelta(days=8))
    assert done.segments_pruned == 2 and _count(client, LogSegment) == 0
    assert _count(client, PredictionRecord) == 4000  # rows stay for their labels (35 days)
    for h in (1, 2):
        sampled = client.get(f"{BASE}/monitoring/drift", params=_hour(h)).json()
        assert sampled["window"] | {"count": 0} == {
            **raw[h]["window"],
            "count": 0,
            "source": "aggregates",
            "sampled": True,
            "rows": 2000,
        }
        assert sampled["window"]["count"] == RETENTION.sample_rows
        assert sampled["dataset"]["drifted"] == raw[h]["dataset"]["drifted"]
        assert sampled["dataset"]["drifted_features"] == raw[h]["dataset"]["drifted_features"]
    both = client.get(
        f"{BASE}/monitoring/drift",
        params={"version": "1", "start": "2026-01-01T01:00:00Z", "end": "2026-01-01T03:00:00Z"},
    ).json()
    assert both["window"]["rows"] == 4000 and both["window"]["count"] == 2 * RETENTION.sample_rows


def test_late_rows_and_rows_not_rolled_up_yet_join_the_sampled_answer(client: TestClient) -> None:
    _setup(client)
    client.post(f"{BASE}/predictions", json=_rows("old", 1, 0.0, 1500, seed=9))
    _maintain(client, datetime.now(UTC) + timedelta(days=8))  # rolled up, then pruned
    client.post(f"{BASE}/predictions", json=_rows("new", 1, 0.0, 1500, seed=10))  # same hour, raw
    answer = client.get(f"{BASE}/monitoring/drift", params=_hour(1)).json()
    assert answer["window"]["source"] == "aggregates" and answer["window"]["rows"] == 3000
    assert answer["window"]["count"] == RETENTION.sample_rows  # one uniform sample of the whole hour


def test_performance_over_pruned_rows_comes_from_the_labelled_samples(client: TestClient) -> None:
    _setup(client)
    rows = _rows("p", 1, 0.0, 1500, seed=11)
    client.post(f"{BASE}/predictions", json=rows)
    labels = [
        {"request_id": r["request_id"], "label": r["prediction"] if i % 4 else 1 - r["prediction"]}
        for i, r in enumerate(rows)
    ]
    client.post(f"{BASE}/labels", json=labels)
    raw = client.get(f"{BASE}/monitoring/performance", params=_hour(1)).json()
    assert raw["performance"]["metrics"]["accuracy"]["value"] == 0.75
    done = _maintain(client, datetime.now(UTC) + timedelta(days=36))
    assert done.rows_pruned == 1500 and _count(client, PredictionRecord) == 0
    sampled = client.get(f"{BASE}/monitoring/performance", params=_hour(1)).json()
    assert sampled["window"]["source"] == "aggregates" and sampled["window"]["rows"] == 1500
    assert sampled["window"]["count"] == RETENTION.sample_rows
    assert abs(sampled["performance"]["metrics"]["accuracy"]["value"] - 0.75) < 0.08
    late = client.post(f"{BASE}/labels", json=[{"request_id": "p-0", "label": 1}]).json()
    assert late["unknown"] == 1  # its prediction is gone


def test_maintenance_from_two_replicas_at_once_counts_every_row_once(client: TestClient) -> None:
    _setup(client)
    for k in range(6):
        client.post(f"{BASE}/predictions", json=_rows(f"r{k}", 1 + k % 2, 0.0, 300, seed=20 + k))
    threads = [threading.Thread(target=_maintain, args=(client,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with client.app.state.db.session(write=False) as session:  # type: ignore[attr-defined]
        counts = sorted(session.scalars(select(MonitoringBucket.rows)))
    assert counts == [900, 900]
    assert _count(client, LogSegment) == 6  # rolled up, not yet expired
