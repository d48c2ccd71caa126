"""A frozen Celery broker (this session's own Redis, SIGSTOPped) fails a submission within a bound
instead of hanging the orchestrator's engine, and submissions work again once it resumes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlops_kit.testing import PrivateServer
from pipeline_orchestrator.app import create_app
from pipeline_orchestrator.executors.celery import CeleryExecutor
from pipeline_orchestrator.protocol import TaskPayload
from pipeline_orchestrator.settings import OrchestratorSettings

BROKER_TIMEOUT = 2.0  # the smallest allowed
SUBMIT_BOUND = 10.0  # a publish, a reconnect and one retry at 2 s each, with room for a loaded machine


@pytest.fixture
def executor(private_redis: PrivateServer) -> Iterator[CeleryExecutor]:
    settings = OrchestratorSettings(
        executor="celery",
        celery_broker_url=private_redis.url,
        celery_queue=f"q-{uuid.uuid4().hex[:8]}",
        celery_broker_timeout_seconds=BROKER_TIMEOUT,
    )
    celery = CeleryExecutor(settings)
    yield celery
    celery.stop()


def payload() -> TaskPayload:
    return TaskPayload(
        attempt_id=uuid.uuid4().hex,
        run_id="r",
        pipeline="p",
        task="t",
        attempt=1,
        kind="shell",
        spec={"command": "true"},
        callback_url="http://127.0.0.1:9",
        callback_token="token",
    )


def test_a_frozen_broker_fails_a_submission_quickly_and_recovers(
    executor: CeleryExecutor, private_redis: PrivateServer
) -> None:
    executor.submit(payload())  # connected and working
    with private_redis.frozen():
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - kombu/redis raise their own timeout types
            executor.submit(payload())
        took = time.monotonic() - started
        assert took < SUBMIT_BOUND, took
    executor.submit(payload())


def test_ready_reports_a_frozen_broker_down_and_recovers(
    private_redis: PrivateServer, tmp_path: Path
) -> None:
    settings = OrchestratorSettings(
        data_dir=tmp_path,
        log_level="WARNING",
        executor="celery",
        celery_broker_url=private_redis.url,
        celery_queue=f"q-{uuid.uuid4().hex[:8]}",
        celery_broker_timeout_seconds=BROKER_TIMEOUT,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["checks"]["executor"] == "ok", ready.text
        with private_redis.frozen():
            started = time.monotonic()
            ready = client.get("/ready")
            assert time.monotonic() - started < SUBMIT_BOUND
            assert ready.status_code == 503, ready.text
            assert ready.json()["checks"]["executor"] != "ok"
            assert ready.json()["checks"]["database"] == "ok"
        assert client.get("/ready").status_code == 200
