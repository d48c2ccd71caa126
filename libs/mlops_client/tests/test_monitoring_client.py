"""The monitoring client against a real registry process: background batching delivers every row
once (through an outage of the real process, on SQLite and PostgreSQL), flush/close/exit, the
reference from every kind of data, drift and performance answers."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlops_client import (
    Batching,
    MlopsClient,
    MonitoringClient,
    NotFoundError,
    RegistryClient,
    ValidationError,
)
from mlops_kit.testing import BACKENDS, ServiceProcess, free_port, fresh_postgres_database, wait_until

FAST = Batching(batch_size=500, flush_interval=0.2, max_backoff=0.5)


@pytest.fixture
def monitoring(registry_url: str) -> Iterator[MonitoringClient]:
    with MonitoringClient(registry_url, batching=FAST) as client:
        yield client


@pytest.fixture
def model(registry: RegistryClient, unique: str) -> str:
    registry.register_model(unique, version="1", metrics={"accuracy": 0.6})
    return unique


def _rows(n: int, prefix: str, shift: float = 0.0, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "request_id": f"{prefix}-{i}",
            "features": {"f1": float(rng.normal(shift, 1.0)), "f2": str(rng.choice(["a", "b", "c"]))},
            "prediction": int(rng.integers(0, 2)),
            "probability": float(rng.uniform()),
        }
        for i in range(n)
    ]


def _frame(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "f1": rng.normal(0.0, 1.0, n),
            "f2": rng.choice(["a", "b", "c"], n),
            "zip": rng.choice(["02110", "10001", "94105"], n),  # digits, but a category
            "flag": rng.integers(0, 2, n).astype(bool),
            "prediction": rng.integers(0, 2, n).astype(float),
        }
    )


def _stored(monitoring: MonitoringClient, model: str, ids: list[str]) -> int:
    """How many of `ids` the server holds (labels join only to logged predictions)."""
    result = monitoring.log_labels(model, dict.fromkeys(ids, 1))
    assert result.labelled + result.unknown == len(ids)
    return result.labelled


# ---- background batching ---------------------------------------------------------------------------


def test_background_logging_delivers_every_row_once(monitoring: MonitoringClient, model: str) -> None:
    ids: list[list[str]] = [[] for _ in range(4)]

    def predict(worker: int) -> None:
        for i in range(1500):
            features = {"f1": float(i), "f2": "abc"[i % 3]}
            rid = monitoring.log_prediction(model, features, i % 2, version="1", probability=0.4)
            ids[worker].append(rid)
        ids[worker] += monitoring.log_predictions(model, _rows(1000, f"w{worker}"), version="1")

    threads = [threading.Thread(target=predict, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the same request ids again: delivered, counted as duplicates, not stored twice
    monitoring.log_predictions(model, _rows(300, "w0"), version="1")
    assert monitoring.flush(timeout=120)
    every = [rid for worker in ids for rid in worker]
    assert len(set(every)) == 10_000
    stats = monitoring.stats()
    assert (stats.accepted, stats.duplicates, stats.dropped, stats.rejected) == (10_000, 300, 0, 0)
    assert stats.enqueued == 10_300 and stats.queued == stats.in_flight == 0
    assert stats.batches >= 2
    assert _stored(monitoring, model, every) == 10_000
    assert monitoring.performance(model, version="1", last="1h").window.count == 10_000


def test_rows_are_sent_after_the_flush_interval_without_a_flush(
    monitoring: MonitoringClient, model: str
) -> None:
    monitoring.log_predictions(model, _rows(3, "timed"), version="1")
    wait_until(lambda: monitoring.stats().accepted == 3, timeout=30, what="a time-based flush")
    assert monitoring.stats().queued == 0


def test_mlops_client_close_delivers_what_is_queued(registry_url: str, model: str) -> None:
    slow = Batching(batch_size=100_000, flush_interval=3600)  # only close() sends
    with MlopsClient(registry_url=registry_url, batching=slow) as mlops:
        ids = mlops.monitoring.log_predictions(model, _rows(250, "closing"), version="1")
        assert mlops.monitoring.stats().accepted == 0
    with MonitoringClient(registry_url) as check:
        assert _stored(check, model, ids) == 250


def test_interpreter_exit_delivers_what_is_queued(registry_url: str, model: str) -> None:
    script = f"""
from mlops_client import Batching, MonitoringClient
client = MonitoringClient({registry_url!r}, batching=Batching(batch_size=100_000, flush_interval=3600))
for i in range(120):
    client.log_prediction({model!r}, {{"f1": float(i)}}, 1, version="1", request_id=f"exit-{{i}}")
# no flush, no close: the atexit hook delivers
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with MonitoringClient(registry_url) as check:
        assert _stored(check, model, [f"exit-{i}" for i in range(120)]) == 120


def _log_in_child(client: MonitoringClient, model: str) -> None:
    client.log_predictions(model, _rows(50, "child"), version="1")
    sys.exit(0 if client.flush(timeout=60) and client.stats().accepted == 50 else 1)


def test_a_forked_worker_sends_with_a_thread_of_its_own(monitoring: MonitoringClient, model: str) -> None:
    monitoring.log_predictions(model, _rows(30, "parent"), version="1")  # the parent's thread runs
    assert monitoring.flush(timeout=60)
    child = multiprocessing.get_context("fork").Process(target=_log_in_child, args=(monitoring, model))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert _stored(monitoring, model, [f"child-{i}" for i in range(50)]) == 50


@contextmanager
def _registry_process(backend: str, tmp: Path, port: int) -> Iterator[ServiceProcess]:
    env = {"MLOPS_DATA_DIR": str(tmp)}
    if backend == "sqlite":
        yield ServiceProcess("model_registry", env=env, tmp=tmp, port=port)
        return
    with fresh_postgres_database("mclient") as url:
        yield ServiceProcess("model_registry", env={**env, "MLOPS_DATABASE_URL": url}, tmp=tmp, port=port)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_outage_of_the_registry_is_retried_without_loss(backend: str, tmp_path: Path) -> None:
    with _registry_process(backend, tmp_path, free_port()) as service:
        service.start()
        try:
            RegistryClient(service.url).register_model("outage", version="1")
            with MonitoringClient(service.url, batching=FAST, retries=1) as monitoring:
                before = monitoring.log_predictions("outage", _rows(2000, "before"), version="1")
                assert monitoring.flush(timeout=60)
                service.stop()
                during = monitoring.log_predictions("outage", _rows(3000, "during"), version="1")
                wait_until(lambda: monitoring.stats().retries >= 2, timeout=30, what="retries while down")
                assert not monitoring.flush(timeout=0)
                service.start()  # same port, same database
                assert monitoring.flush(timeout=120)
                stats = monitoring.stats()
                assert stats.accepted + stats.duplicates == 5000 and stats.accepted == 5000
                assert (stats.dropped, stats.rejected, stats.abandoned) == (0, 0, 0)
                assert stats.retries >= 2 and stats.last_error is not None
                assert _stored(monitoring, "outage", before + during) == 5000
        finally:
            service.stop()


def test_a_full_queue_drops_the_oldest_or_the_newest_rows(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # nothing listens yet: the rows wait in the queue
    hold = Batching(batch_size=100_000, flush_interval=3600, max_queue=100)
    oldest = MonitoringClient(url, batching=hold)  # drop_oldest is the default
    newest = MonitoringClient(url, batching=replace(hold, on_full="block", block_timeout=0.001))
    for client, name in ((oldest, "oldest"), (newest, "newest")):
        for i in range(250):
            client.log_prediction(name, {"f1": 1.0}, 1, version="1", request_id=f"{name}-{i}")
        assert client.stats().dropped == 150 and client.stats().queued == 100
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp_path)}, tmp=tmp_path, port=port):
        with RegistryClient(url) as registry:
            registry.register_model("oldest", version="1")
            registry.register_model("newest", version="1")
        for client in (oldest, newest):
            assert client.flush(timeout=60)
            client.close()
        with MonitoringClient(url) as check:
            kept = check.log_labels("oldest", {f"oldest-{i}": 1 for i in range(250)})
            assert (kept.labelled, kept.unknown) == (100, 150)
            assert _stored(check, "oldest", [f"oldest-{i}" for i in range(150, 250)]) == 100
            assert _stored(check, "newest", [f"newest-{i}" for i in range(100)]) == 100


def test_close_gives_up_after_its_timeout_and_counts_the_rows(tmp_path: Path) -> None:
    client = MonitoringClient(f"http://127.0.0.1:{free_port()}", batching=FAST, retries=1)
    client.log_predictions("nowhere", _rows(40, "lost"), version="1")
    client.close(timeout=0.5)
    stats = client.stats()
    assert stats.abandoned == 40 and stats.accepted == 0 and stats.queued == stats.in_flight == 0


def test_a_bad_row_is_refused_alone(monitoring: MonitoringClient, model: str) -> None:
    rows = _rows(50, "bad")
    rows[17]["features"]["f2"] = "x" * 5000  # over the 1,024-character bound
    rows[31]["version"] = "99"  # not a version of the model
    monitoring.log_predictions(model, rows, version="1")
    assert monitoring.flush(timeout=60)
    stats = monitoring.stats()
    assert (stats.accepted, stats.rejected) == (48, 2)
    assert stats.last_error is not None and "422" in stats.last_error
    good = [r["request_id"] for i, r in enumerate(rows) if i not in (17, 31)]
    assert _stored(monitoring, model, good) == 48


def test_rows_need_features_and_a_version(monitoring: MonitoringClient, model: str) -> None:
    with pytest.raises(ValueError, match="version"):
        monitoring.log_predictions(model, [{"features": {"f1": 1.0}}])
    with pytest.raises(ValueError, match="features"):
        monitoring.log_predictions(model, [{"prediction": 1}], version="1")


def test_synchronous_logging_and_labels(monitoring: MonitoringClient, model: str) -> None:
    rows = _rows(12_000, "sync")
    rows[5]["features"]["f1"] = float("nan")  # a missing value, not an error
    rows[6]["timestamp"] = datetime(2026, 1, 1, 12, tzinfo=UTC)
    first = monitoring.log_predictions_sync(model, rows, version="1")
    again = monitoring.log_predictions_sync(model, rows[:10_500], version="1")
    assert (first.accepted, first.duplicates) == (12_000, 0)
    assert (again.accepted, again.duplicates) == (0, 10_500)
    labels = monitoring.log_labels(model, [{"request_id": r["request_id"], "label": 1} for r in rows])
    assert (labels.labelled, labels.unknown) == (12_000, 0)
    unknown = monitoring.log_labels(model, {"nope-1": 0, "sync-1": 0})
    assert (unknown.labelled, unknown.unknown, unknown.unknown_request_ids) == (1, 1, ["nope-1"])


# ---- reference profiles ------------------------------------------------------------------------------


def _python(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _profile_of(monitoring: MonitoringClient, model: str, version: str) -> dict[str, Any]:
    return monitoring.get_reference(model, version).profile


def test_reference_from_a_frame_a_table_records_and_files_is_the_same_profile(
    monitoring: MonitoringClient, registry: RegistryClient, model: str, tmp_path: Path
) -> None:
    frame = _frame()
    for version in "2345678":
        registry.register_model(model, version=version)
    summary = monitoring.set_reference(model, "1", frame)
    kinds = {c.name: c.kind for c in summary.columns}
    assert kinds == {
        "f1": "numeric",
        "f2": "categorical",
        "zip": "categorical",
        "flag": "boolean",
        "prediction": "numeric",
    }
    assert summary.rows == 1500 and summary.version == "1"
    records = [{k: _python(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    frame.to_csv(tmp_path / "ref.csv", index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "ref.parquet")
    (tmp_path / "ref.json").write_text(json.dumps(records))
    seen: list[tuple[int, int | None]] = []
    monitoring.set_reference(model, "2", pa.Table.from_pandas(frame, preserve_index=False))
    monitoring.set_reference(model, "3", records, types={"zip": "categorical"})
    zip_code = {"zip": "categorical"}
    csv_summary = monitoring.set_reference(
        model, "4", tmp_path / "ref.csv", types=zip_code, progress=lambda d, t: seen.append((d, t))
    )
    monitoring.set_reference(model, "5", tmp_path / "ref.parquet")
    monitoring.set_reference(model, "6", str(tmp_path / "ref.json"), types={"zip": "categorical"})
    assert csv_summary.rows == 1500
    size = (tmp_path / "ref.csv").stat().st_size
    assert seen[-1] == (size, size)
    expected = _profile_of(monitoring, model, "1")
    for version in "23456":
        assert _profile_of(monitoring, model, version) == expected, version


def test_reference_errors(monitoring: MonitoringClient, model: str, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as missing:
        monitoring.get_reference(model, "1")
    assert missing.value.code == "REFERENCE_NOT_FOUND"
    (tmp_path / "ref.csv").write_text("f1,f2\n1.5,a\nhigh,b\n")
    with pytest.raises(ValidationError) as mismatch:
        monitoring.set_reference(model, "1", tmp_path / "ref.csv", types={"f1": "numeric"})
    assert mismatch.value.code == "COLUMN_TYPE_MISMATCH" and mismatch.value.details["row"] == 1
    with pytest.raises(ValueError, match="unknown column types"):
        monitoring.set_reference(model, "1", [{"f1": 1}], types={"f1": "text"})
    with pytest.raises(ValueError, match=r"\.csv"):
        (tmp_path / "ref.xlsx").write_bytes(b"x")
        monitoring.set_reference(model, "1", tmp_path / "ref.xlsx")


# ---- drift and performance ---------------------------------------------------------------------------


def test_drift_and_performance_are_the_servers_answers(
    monitoring: MonitoringClient, registry_url: str, model: str
) -> None:
    monitoring.set_reference(model, "1", _frame(2000).drop(columns=["zip", "flag"]))
    rows = _rows(600, "live", shift=1.5)
    monitoring.log_predictions_sync(model, rows, version="1")
    monitoring.log_labels(model, {r["request_id"]: r["prediction"] for r in rows[:400]})
    report = monitoring.drift(model, version="1", last=timedelta(hours=1))
    with httpx.Client(base_url=registry_url) as http:
        base = f"/api/models/{model}/monitoring"
        raw = http.get(f"{base}/drift", params={"version": "1", "last": "60m"}).json()
        raw_performance = http.get(f"{base}/performance", params={"last_n": 600}).json()
    assert report.window.count == 600 and "f1" in report.drifted_features
    assert report.model_dump(mode="json")["features"] == raw["features"]
    assert report.drifted == raw["dataset"]["drifted"]
    performance = monitoring.performance(model, last_n=600)
    assert performance.version == "1" and performance.performance["n_labelled"] == 400
    assert performance.metrics["accuracy"] == 1.0
    assert performance.performance == raw_performance["performance"]
    assert performance.registered["accuracy"]["registered"] == 0.6
    since = datetime.now(UTC) - timedelta(hours=1)
    assert monitoring.drift(model, start=since, last_n=100).window.count == 100


def test_the_html_report_is_returned_and_written(
    monitoring: MonitoringClient, model: str, tmp_path: Path
) -> None:
    monitoring.set_reference(model, "1", _frame(500).drop(columns=["zip", "flag"]))
    monitoring.log_predictions_sync(model, _rows(200, "page"), version="1")
    html = monitoring.report(model, tmp_path / "report.html", version="1", last=timedelta(hours=1))
    assert html.lstrip().lower().startswith("<!doctype html") and "f1" in html
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == html
    with pytest.raises(ValidationError) as invalid:
        monitoring.report(model, start="2026-01-02T00:00:00Z", end="2026-01-01T00:00:00Z")
    assert invalid.value.code == "INVALID_MONITORING_QUERY"


def test_drift_errors_are_typed(monitoring: MonitoringClient, model: str) -> None:
    monitoring.log_predictions_sync(model, _rows(5, "e"), version="1")
    with pytest.raises(NotFoundError) as missing:
        monitoring.drift(model)
    assert missing.value.code == "REFERENCE_NOT_FOUND"
    with pytest.raises(ValidationError) as invalid:
        monitoring.drift(model, start="2026-01-02T00:00:00Z", end="2026-01-01T00:00:00Z")
    assert invalid.value.code == "INVALID_MONITORING_QUERY"
    with pytest.raises(ValueError, match="whole number of minutes"):
        monitoring.drift(model, last=timedelta(seconds=90))
