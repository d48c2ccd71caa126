"""Helpers shared by model serving's tests (imported by name: the tests dir is on pytest's pythonpath)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np

FEATURES = ("age", "income", "tenure", "score")


def training_data(
    n_rows: int = 200, n_features: int = 4, n_classes: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features and integer labels that depend on them, so models learn something."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_rows, n_features))
    score = features[:, 0] + 0.5 * features[:, 1] + rng.normal(scale=0.3, size=n_rows)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return features, np.digitize(score, edges)


def random_rows(n_rows: int, n_features: int, seed: int = 1) -> np.ndarray:
    """Fresh rows to predict, wider than the training data so many leaves are reached."""
    return np.random.default_rng(seed).normal(scale=1.5, size=(n_rows, n_features))


def write_joblib(model: Any, directory: Path, name: str = "model.joblib") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / name)
    return directory


def write_pickle(model: Any, directory: Path, name: str = "model.pkl") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / name).open("wb") as handle:
        pickle.dump(model, handle)
    return directory
