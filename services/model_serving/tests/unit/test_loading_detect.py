"""Which library reads a version's artifacts, and the load errors for everything else."""

from __future__ import annotations

from pathlib import Path

import joblib
import lightgbm
import pytest
import xgboost
from model_serving.loading import ModelLoadError, load_model
from serving_helpers import training_data, write_joblib
from sklearn.linear_model import LogisticRegression

GARBAGE = bytes(range(256)) * 8


@pytest.fixture(scope="module")
def fitted() -> LogisticRegression:
    features, labels = training_data()
    return LogisticRegression().fit(features, labels)


def test_files_without_a_telling_extension_are_recognised_by_content(tmp_path: Path) -> None:
    features, labels = training_data()
    joblib.dump(LogisticRegression().fit(features, labels), _mkdir(tmp_path / "p") / "artifact")
    xgboost.XGBClassifier(n_estimators=2).fit(features, labels).save_model(_mkdir(tmp_path / "x") / "m.ubj")
    (tmp_path / "x" / "m.ubj").rename(tmp_path / "x" / "artifact")
    xgboost.XGBRegressor(n_estimators=2).fit(features, labels).save_model(_mkdir(tmp_path / "j") / "m.json")
    (tmp_path / "j" / "m.json").rename(tmp_path / "j" / "artifact")
    lgb = lightgbm.LGBMClassifier(n_estimators=2, verbose=-1).fit(features, labels)
    lgb.booster_.save_model(_mkdir(tmp_path / "l") / "artifact")

    flavors = [load_model(tmp_path / d).flavor for d in ("p", "x", "j", "l")]

    assert flavors == ["sklearn", "xgboost", "xgboost", "lightgbm"]


def test_compressed_joblib_files_are_pickles(tmp_path: Path, fitted: LogisticRegression) -> None:
    joblib.dump(fitted, tmp_path / "model.joblib.gz", compress=3)
    (tmp_path / "model.joblib.gz.sha256").write_text("0" * 64)

    assert load_model(tmp_path).flavor == "sklearn"


def test_a_model_file_path_is_loaded_directly(tmp_path: Path, fitted: LogisticRegression) -> None:
    write_joblib(fitted, tmp_path)

    assert load_model(tmp_path / "model.joblib").flavor == "sklearn"


def test_hidden_files_beside_the_model_are_ignored(tmp_path: Path, fitted: LogisticRegression) -> None:
    write_joblib(fitted, tmp_path)
    (tmp_path / ".sha256").write_text("0" * 64)

    assert load_model(tmp_path).flavor == "sklearn"


def test_other_files_beside_one_model_file_are_ignored(tmp_path: Path, fitted: LogisticRegression) -> None:
    write_joblib(fitted, tmp_path)
    (tmp_path / "README.md").write_text("churn model")

    assert load_model(tmp_path).flavor == "sklearn"


def test_two_model_files_are_ambiguous(tmp_path: Path, fitted: LogisticRegression) -> None:
    write_joblib(fitted, tmp_path, "a.joblib")
    write_joblib(fitted, tmp_path, "b.pkl")

    with pytest.raises(ModelLoadError, match="expected one model file among the artifacts, found 2"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("model.pkl", "model.pkl is not a readable pickle/joblib file"),
        ("model.joblib", "model.joblib is not a readable pickle/joblib file"),
        ("model.onnx", "model.onnx is not a readable ONNX model"),
        ("model.ubj", "model.ubj is not a readable XGBoost model"),
        ("model.bin", "unknown model format: model.bin"),
        ("model.json", "unknown model format: model.json"),
        ("model.txt", "unknown model format: model.txt"),
    ],
)
def test_garbage_bytes_are_a_load_error_naming_the_file(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / name).write_bytes(GARBAGE)

    with pytest.raises(ModelLoadError, match=message):
        load_model(tmp_path)


def test_a_truncated_lightgbm_model_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("tree\nversion=v4\nnum_class=1\nTree=0\nnum_leaves=")

    with pytest.raises(ModelLoadError, match="not a readable LightGBM model"):
        load_model(tmp_path)


def test_a_learner_json_that_is_cut_short_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"learner": {"attributes": {')

    with pytest.raises(ModelLoadError, match="not a readable XGBoost model"):
        load_model(tmp_path)


def test_an_empty_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="artifacts are empty"):
        load_model(tmp_path)


def test_a_missing_path_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no model artifacts"):
        load_model(tmp_path / "nowhere")


def test_an_mlmodel_that_is_not_yaml_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: [unclosed")

    with pytest.raises(ModelLoadError, match="MLmodel is not valid YAML"):
        load_model(tmp_path)


def test_an_mlmodel_without_flavors_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("artifact_path: model\n")

    with pytest.raises(ModelLoadError, match="no flavors"):
        load_model(tmp_path)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
