"""Staged ingestion: accepted events wait in a log that folder processes (one per shard of the
users) fold into the statistics; reads fold what is still pending; concurrent requests for the
same users lose nothing; the migration from raw events keeps their ids and exposures."""

from __future__ import annotations

import threading
from pathlib import Path

import ab_testing.app as ab_app
import numpy as np
import pytest
from ab_helpers import create, oracle_stats, sample_events, stats
from ab_testing.app import create_app
from ab_testing.events import shard_of
from ab_testing.folding import catch_up, fold_for_read, pending_events, pending_shards
from ab_testing.settings import AbTestingSettings
from fastapi.testclient import TestClient
from mlops_kit.db import Database, run_migrations
from sqlalchemy import text


def _close(got: dict, expected: dict) -> None:
    for key, fields in expected.items():
        for name, value in fields.items():
            assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)


def test_folder_processes_fold_accepted_events_without_a_read(ab: TestClient) -> None:
    settings = ab.app.state.settings  # type: ignore[attr-defined]
    assert settings.fold_shards == 2 and not settings.fold_in_process
    create(ab)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    events = sample_events(np.random.default_rng(11), n_users=200)
    assert ab.post("/api/events", json={"events": events}).status_code == 200
    # users of both shards were sent, so both folder processes had work
    assert {shard_of(e["user_id"], 2) for e in events} == {0, 1}
    assert ab.app.state.folder.wait_drained(60)  # type: ignore[attr-defined]
    db = ab.app.state.db  # type: ignore[attr-defined]
    assert pending_shards(db) == []
    assert catch_up(db) == 0  # nothing was left for a read to fold
    _close(stats(ab, "model_v2_test", fold=False), oracle_stats(definition, events))


def test_concurrent_requests_for_the_same_users_lose_nothing(ab: TestClient) -> None:
    create(ab)
    definition = ab.get("/api/experiments/model_v2_test/definition").json()
    events = sample_events(np.random.default_rng(5), n_users=150)
    # four clients at once, each sending every fourth event: every user's events are split across
    # requests that run concurrently, while the folders fold
    parts = [events[k::4] for k in range(4)]
    answers: list[int] = []

    def send(part: list[dict]) -> None:
        for start in range(0, len(part), 25):
            answers.append(ab.post("/api/events", json={"events": part[start : start + 25]}).status_code)

    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) == {200}
    _close(stats(ab, "model_v2_test"), oracle_stats(definition, events))
    variants = ab.get("/api/experiments/model_v2_test/results").json()["variants"]
    assert sum(v["exposures"] for v in variants) == len({e["user_id"] for e in events})


def test_an_event_id_stays_a_duplicate_after_its_event_was_folded(ab: TestClient) -> None:
    create(ab)
    one = {
        "event_id": "once",
        "experiment": "model_v2_test",
        "user_id": "u1",
        "metric": "revenue",
        "value": 2,
    }
    assert ab.post("/api/events", json=one).json()["accepted"] == 1
    before = stats(ab, "model_v2_test")
    again = ab.post("/api/events", json={"events": [one, one | {"event_id": "twice"}]}).json()
    assert again == {"accepted": 1, "duplicates": 1, "not_in_experiment": 0}
    after = stats(ab, "model_v2_test")
    revenue = next(k for k in after if k[1] == "revenue")
    assert after[revenue]["sum"] == before[revenue]["sum"] + 2


def test_migration_from_raw_events_keeps_ids_and_exposures(ab_backend: dict, tmp_path: Path) -> None:
    if "database_url" in ab_backend:
        from mlops_kit.testing import fresh_postgres_database

        with fresh_postgres_database("abmigrate") as url:
            _check_migration(url)
    else:
        _check_migration(f"sqlite:///{tmp_path / 'migrate.db'}")


def _check_migration(url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from mlops_kit.db import normalize_url

    cfg = Config()
    cfg.set_main_option("script_location", str(ab_app.MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "0001")
    db = Database.connect(url)
    try:
        with db.writer.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO events "
                    "(experiment_id, event_id, phase, user_id, variant, metric, value, at) "
                    "VALUES ('e1', 'ev-1', 1, 'u1', 'control', 'revenue', 3.5, '2026-11-20 10:00:00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO exposures (experiment_id, phase, user_id, variant, at) "
                    "VALUES ('e1', 1, 'u1', 'control', '2026-11-20 10:00:00')"
                )
            )
        run_migrations(url, ab_app.MIGRATIONS)
        with db.reader.connect() as conn:
            assert conn.execute(text("SELECT experiment_id, event_id FROM event_ids")).all() == [
                ("e1", "ev-1")
            ]
            assert conn.execute(text("SELECT user_id, variant FROM exposures")).all() == [("u1", "control")]
            assert conn.execute(text("SELECT count(*) FROM pending_events")).scalar() == 0
        # the exposure key is (experiment, phase, user) now
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"), db.writer.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO exposures (experiment_id, phase, user_id, variant, at) "
                    "VALUES ('e1', 1, 'u1', 'treatment', '2026-11-21 10:00:00')"
                )
            )
        command.downgrade(cfg, "0001")
        with db.reader.connect() as conn:
            assert conn.execute(text("SELECT user_id, variant FROM exposures")).all() == [("u1", "control")]
    finally:
        db.dispose()


def test_a_read_after_a_burst_folds_for_a_while_and_reports_what_is_left(
    ab_backend: dict, tmp_path: Path
) -> None:
    """The folder in the service's own thread (fold_in_process), idle for the test, on a database
    of its own: a read folds for `read_fold_seconds` at most and reports the rest as
    pending_events."""
    if "database_url" in ab_backend:
        from mlops_kit.testing import fresh_postgres_database

        with fresh_postgres_database("abread") as url:
            _burst_then_read({"database_url": url, "data_dir": tmp_path})
    else:
        _burst_then_read({"data_dir": tmp_path})


def _burst_then_read(storage: dict) -> None:
    settings = AbTestingSettings(
        **storage,
        log_level="WARNING",
        fold_in_process=True,
        fold_interval_seconds=3600,
        fold_chunk_events=1,  # a chunk is one request's events (per shard)
        read_fold_seconds=0.000001,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        create(client)
        definition = client.get("/api/experiments/model_v2_test/definition").json()
        events = sample_events(np.random.default_rng(21), n_users=60)
        for start in range(0, len(events), 40):
            assert client.post("/api/events", json={"events": events[start : start + 40]}).status_code == 200
        db = client.app.state.db  # type: ignore[attr-defined]
        accepted = pending_events(db)
        assert accepted == len(events)
        first = client.get("/api/experiments/model_v2_test/results").json()["pending_events"]
        assert 0 < first < accepted  # one chunk per shard, then the time was up
        assert fold_for_read(db, 60, 1) == 0
        assert client.get("/api/experiments/model_v2_test/results").json()["pending_events"] == 0
        _close(stats(client, "model_v2_test", fold=False), oracle_stats(definition, events))
