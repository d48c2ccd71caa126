"""XGBoost and LightGBM native model files: the served values are the libraries' own."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from model_serving.loading import InputMismatch, load_model
from serving_helpers import FEATURES, random_rows, training_data


def test_xgboost_classifier_saved_as_json_serves_its_probabilities(tmp_path: Path) -> None:
    features, labels = training_data()
    frame = pd.DataFrame(features, columns=list(FEATURES))
    classifier = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(frame, labels)
    classifier.save_model(tmp_path / "model.json")
    model = load_model(tmp_path)
    rows = random_rows(200, 4)

    served = model.predict(None, rows.tolist())

    assert model.flavor == "xgboost"
    assert model.signature.names == FEATURES
    assert model.signature.outputs == ("prediction", "probability")
    assert served.probabilities == classifier.predict_proba(rows).tolist()
    assert served.predictions == classifier.predict(rows).tolist()
    assert served.classes == [0, 1]


def test_xgboost_multiclass_booster_without_names_takes_rows_positionally(tmp_path: Path) -> None:
    features, labels = training_data(n_classes=3)
    classifier = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(features, labels)
    classifier.get_booster().save_model(tmp_path / "model.ubj")
    model = load_model(tmp_path)
    rows = random_rows(50, 4)

    served = model.predict(["d", "c", "b", "a"], rows.tolist())

    assert model.signature.names is None
    assert served.probabilities == classifier.predict_proba(rows).tolist()
    assert served.predictions == classifier.predict(rows).tolist()
    assert served.classes == [0, 1, 2]


def test_xgboost_regressor_booster_serves_its_values(tmp_path: Path) -> None:
    features, _ = training_data()
    target = features @ np.array([1.0, -2.0, 0.5, 3.0])
    frame = pd.DataFrame(features, columns=list(FEATURES))
    regressor = xgboost.XGBRegressor(n_estimators=10).fit(frame, target)
    regressor.get_booster().save_model(tmp_path / "model.json")
    model = load_model(tmp_path)
    rows = random_rows(50, 4)

    served = model.predict(list(reversed(FEATURES)), rows[:, ::-1].tolist())

    assert served.predictions == regressor.predict(rows).tolist()
    assert served.probabilities is None
    assert model.signature.types == ("float", "float", "float", "float")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lightgbm_classifier_booster_serves_its_probabilities(tmp_path: Path, n_classes: int) -> None:
    features, labels = training_data(n_classes=n_classes)
    frame = pd.DataFrame(features, columns=list(FEATURES))
    classifier = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(frame, labels)
    classifier.booster_.save_model(tmp_path / "model.txt")
    model = load_model(tmp_path)
    rows = random_rows(200, 4)

    served = model.predict(None, rows.tolist())

    assert model.flavor == "lightgbm"
    assert model.signature.names == FEATURES
    request = pd.DataFrame(rows, columns=list(FEATURES))
    assert served.probabilities == classifier.predict_proba(request).tolist()
    assert served.predictions == classifier.predict(request).tolist()
    assert served.classes == list(range(n_classes))


def test_lightgbm_regressor_without_names_is_positional(tmp_path: Path) -> None:
    features, _ = training_data()
    target = features @ np.array([1.0, -2.0, 0.5, 3.0])
    regressor = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(features, target)
    regressor.booster_.save_model(tmp_path / "model.txt")
    model = load_model(tmp_path)
    rows = random_rows(50, 4)

    served = model.predict(None, rows.tolist())

    assert model.signature.names is None
    assert model.signature.n_features == 4
    assert served.predictions == regressor.predict(rows).tolist()
    with pytest.raises(InputMismatch, match="expected 4 columns, got 2"):
        model.predict(["a", "b"], [[1.0, 2.0]])


def test_boosters_take_missing_values(tmp_path: Path) -> None:
    features, labels = training_data()
    (tmp_path / "x").mkdir()
    (tmp_path / "l").mkdir()
    xgboost.XGBClassifier(n_estimators=3).fit(features, labels).save_model(tmp_path / "x" / "m.json")
    lgb = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(features, labels)
    lgb.booster_.save_model(tmp_path / "l" / "m.txt")

    for directory in ("x", "l"):
        model = load_model(tmp_path / directory)
        model.warm()
        assert len(model.predict(None, [[None, 1.0, None, 2.0]]).predictions) == 1
