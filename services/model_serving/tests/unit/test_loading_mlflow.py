"""MLflow model directories written by mlflow.sklearn.save_model, read without MLflow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from model_serving.loading import ModelLoadError, load_model
from serving_helpers import random_rows, training_data
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

COLUMNS = ["age", "income", "tenure", "visits"]


def _frame(values: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(values[:, :3], columns=COLUMNS[:3])
    frame["visits"] = np.abs(values[:, 3] * 10).astype(np.int64)
    return frame


def _save(estimator: Any, frame: pd.DataFrame, path: Path, **options: Any) -> Path:
    import mlflow.sklearn  # slow to import: only the tests that write MLflow models pay for it
    from mlflow.models import infer_signature

    signature = infer_signature(frame, estimator.predict(frame))
    requirements = ["scikit-learn"]  # skips MLflow's slow requirement inference
    mlflow.sklearn.save_model(estimator, path, signature=signature, pip_requirements=requirements, **options)
    return path


@pytest.fixture(scope="module")
def forest_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RandomForestClassifier]:
    features, labels = training_data()
    frame = _frame(features)
    estimator = RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, labels)
    root = tmp_path_factory.mktemp("mlflow")
    _save(estimator, frame, root / "model", serialization_format="cloudpickle")
    return root / "model", estimator


def test_sklearn_flavor_serves_the_estimator_with_the_signature(forest_dir: tuple[Path, Any]) -> None:
    path, estimator = forest_dir
    model = load_model(path)
    frame = _frame(random_rows(100, 4))
    reordered = ["visits", "age", "tenure", "income"]

    served = model.predict(reordered, frame[reordered].to_numpy().tolist())

    assert model.flavor == "mlflow.sklearn"
    assert model.signature.names == tuple(COLUMNS)
    assert model.signature.types == ("double", "double", "double", "long")
    assert served.probabilities == estimator.predict_proba(frame).tolist()
    assert served.predictions == estimator.predict(frame).tolist()


def test_mlmodel_one_directory_down_is_found(forest_dir: tuple[Path, Any]) -> None:
    path, _ = forest_dir

    assert load_model(path.parent).flavor == "mlflow.sklearn"


def test_python_function_flavor_with_the_sklearn_loader_is_served(
    forest_dir: tuple[Path, Any], tmp_path: Path
) -> None:
    copy = _edited_copy(forest_dir[0], tmp_path, lambda meta: meta["flavors"].pop("sklearn"))

    model = load_model(copy)

    assert model.flavor == "mlflow.sklearn"
    assert model.signature.names == tuple(COLUMNS)


def test_other_pyfunc_loaders_are_refused_with_what_is_supported(
    forest_dir: tuple[Path, Any], tmp_path: Path
) -> None:
    def to_pytorch(meta: dict[str, Any]) -> None:
        meta["flavors"].pop("sklearn")
        meta["flavors"]["python_function"]["loader_module"] = "mlflow.pytorch"

    copy = _edited_copy(forest_dir[0], tmp_path, to_pytorch)

    expected = r"'mlflow\.pytorch' is not supported; served: the sklearn flavor"
    with pytest.raises(ModelLoadError, match=expected):
        load_model(copy)


def test_missing_model_data_is_a_load_error(forest_dir: tuple[Path, Any], tmp_path: Path) -> None:
    copy = _edited_copy(forest_dir[0], tmp_path, lambda meta: None)
    (copy / "model.pkl").unlink()

    with pytest.raises(ModelLoadError, match=r"'model\.pkl', which is not a file in the model directory"):
        load_model(copy)


def test_model_data_outside_the_directory_is_refused(forest_dir: tuple[Path, Any], tmp_path: Path) -> None:
    def escape(meta: dict[str, Any]) -> None:
        meta["flavors"]["sklearn"]["pickled_model"] = "../../model.pkl"

    with pytest.raises(ModelLoadError, match="not a file in the model directory"):
        load_model(_edited_copy(forest_dir[0], tmp_path, escape))


def test_skops_serialization_mlflows_default_is_served(tmp_path: Path) -> None:
    features, labels = training_data()
    frame = _frame(features)
    estimator = LogisticRegression(max_iter=500).fit(frame, labels)
    model = load_model(_save(estimator, frame, tmp_path / "model"))
    rows = _frame(random_rows(20, 4))

    served = model.predict(COLUMNS, rows.to_numpy().tolist())

    assert served.predictions == estimator.predict(rows).tolist()
    np.testing.assert_array_equal(served.probabilities, estimator.predict_proba(rows))


def _edited_copy(source: Path, tmp_path: Path, edit: Any) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    meta = yaml.safe_load((copy / "MLmodel").read_text())
    edit(meta)
    (copy / "MLmodel").write_text(yaml.safe_dump(meta))
    return copy
