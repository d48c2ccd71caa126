"""Real processes for serving's integration tests: a model registry with trained models
registered, and serving processes pointed at it (or at nothing, for the failure tests)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
from mlops_client import RegistryClient
from mlops_kit.testing.backends import free_port, wait_until
from mlops_kit.testing.process import ServiceProcess
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

N_FEATURES = 6


@dataclass
class Trained:
    X: np.ndarray
    forest: RandomForestClassifier
    logistic: LogisticRegression


def train() -> Trained:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(X, y)
    logistic = LogisticRegression().fit(X, y)
    return Trained(X, forest, logistic)


def register(client: RegistryClient, name: str, model: Any, tmp: Path, *, as_pickle: bool = False) -> str:
    """A version of `name` holding `model` (joblib, or a plain pickle); returns its version."""
    folder = tmp / f"{name}-{id(model)}"
    folder.mkdir(parents=True, exist_ok=True)
    if as_pickle:
        path = folder / "model.pkl"
        path.write_bytes(pickle.dumps(model))
    else:
        path = folder / "model.joblib"
        joblib.dump(model, path)
    return client.register_model(name, framework="sklearn", path=path).version


def register_bytes(client: RegistryClient, name: str, data: bytes, tmp: Path, filename: str) -> str:
    folder = tmp / f"{name}-raw-{len(data)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_bytes(data)
    return client.register_model(name, framework="sklearn", path=folder / filename).version


@contextmanager
def serving(
    tmp: Path, registry_url: str, *, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[ServiceProcess]:
    base = {
        "MLOPS_DATA_DIR": str(tmp / f"serving-{port or 'x'}-{id(env)}"),
        "MLOPS_MODEL_REGISTRY_URL": registry_url,
        "MLOPS_AB_TESTING_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_FEATURE_STORE_URL": f"http://127.0.0.1:{free_port()}",
        "MLOPS_MODEL_SERVING_WATCH_SECONDS": "0.2",
        "MLOPS_MODEL_SERVING_RESYNC_SECONDS": "0.5",
        "MLOPS_MODEL_SERVING_LOAD_RETRY_MAX_SECONDS": "1",
        "MLOPS_MODEL_SERVING_LOG_FLUSH_SECONDS": "0.2",
        **(env or {}),
    }
    with ServiceProcess("model_serving", env=base, tmp=tmp, port=port) as process:
        yield process


def deploy(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/deployments", json=body, timeout=60)  # waits up to 10 s for a load
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_serving(url: str, name: str, version: str, timeout: float = 60) -> dict[str, Any]:
    """The deployment's status once this replica serves `version`."""

    def check() -> dict[str, Any] | None:
        body = httpx.get(f"{url}/api/deployments/{name}", timeout=5).json()
        loaded = body["status"]["loaded"]
        return body if loaded and loaded["version"] == version else None

    return wait_until(check, timeout=timeout, what=f"{name} serving version {version}")
