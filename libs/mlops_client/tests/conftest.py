from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_helpers import KEYS
from mlops_client import FeatureStoreClient, PipelinesClient, RegistryClient, TrackingClient
from mlops_kit.testing import ServiceProcess


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("client-registry")
    with ServiceProcess("model_registry", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture(scope="session")
def secured_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("client-secured")
    keys = ",".join(f"{role}:{role}-user:{key}" for role, key in KEYS.items())
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_API_KEYS": keys, "MLOPS_HOST": "127.0.0.1"}
    with ServiceProcess("model_registry", env=env, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture(scope="session")
def small_upload_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry that refuses uploads over 1,000 bytes (an upload that fails half-way)."""
    tmp = tmp_path_factory.mktemp("client-small-uploads")
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_MAX_UPLOAD_BYTES": "1000"}
    with ServiceProcess("model_registry", env=env, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture
def registry(registry_url: str) -> Iterator[RegistryClient]:
    with RegistryClient(registry_url) as client:
        yield client


@pytest.fixture(scope="session")
def tracking_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m experiment_tracking` on SQLite and local files."""
    tmp = tmp_path_factory.mktemp("client-tracking")
    with ServiceProcess("experiment_tracking", env={"MLOPS_DATA_DIR": str(tmp)}, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture
def tracking(tracking_url: str) -> Iterator[TrackingClient]:
    with TrackingClient(tracking_url) as client:
        yield client


@pytest.fixture(scope="session")
def feature_store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m feature_store`: SQLite registry and offline store, embedded SQLite online store."""
    tmp = tmp_path_factory.mktemp("client-features")
    env = {"MLOPS_DATA_DIR": str(tmp), "MLOPS_FEATURE_STORE_ONLINE_STORE": "sqlite"}
    with ServiceProcess("feature_store", env=env, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture
def features(feature_store_url: str) -> Iterator[FeatureStoreClient]:
    with FeatureStoreClient(feature_store_url) as client:
        yield client


@pytest.fixture(scope="session")
def orchestrator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m pipeline_orchestrator`: SQLite, local worker processes, a fast scheduler tick."""
    tmp = tmp_path_factory.mktemp("client-pipelines")
    env = {
        "MLOPS_DATA_DIR": str(tmp),
        "MLOPS_PIPELINE_ORCHESTRATOR_EXECUTOR": "local",
        "MLOPS_PIPELINE_ORCHESTRATOR_WORKERS": "2",
        "MLOPS_PIPELINE_ORCHESTRATOR_SCHEDULER_INTERVAL_SECONDS": "0.2",
    }
    with ServiceProcess("pipeline_orchestrator", env=env, tmp=Path(tmp)) as service:
        yield service.url


@pytest.fixture
def pipelines(orchestrator_url: str) -> Iterator[PipelinesClient]:
    with PipelinesClient(orchestrator_url) as client:
        yield client


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A model name no other test uses (tests share one service process)."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{secrets.token_hex(3)}"
