"""scikit-learn estimators from joblib and pickle files: the served predictions are scikit-learn's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from model_serving.loading import InputMismatch, ModelLoadError, load_model
from serving_helpers import FEATURES, random_rows, training_data, write_joblib, write_pickle
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@pytest.mark.parametrize("forest", [RandomForestClassifier, ExtraTreesClassifier])
def test_forest_classifier_probabilities_equal_sklearn_exactly(tmp_path: Path, forest: type) -> None:
    features, labels = training_data(n_classes=3)
    estimator = forest(n_estimators=15, max_depth=6, random_state=0).fit(features, labels)
    model = load_model(write_joblib(estimator, tmp_path))
    rows = random_rows(300, 4)

    served = model.predict(None, rows.tolist())

    assert model.flavor == "sklearn"
    assert model._forest is not None  # type: ignore[attr-defined]  # the summed-trees path is the one tested
    assert served.probabilities == estimator.predict_proba(rows).tolist()
    assert served.predictions == estimator.predict(rows).tolist()
    assert served.classes == [0, 1, 2]


@pytest.mark.parametrize("forest", [RandomForestRegressor, ExtraTreesRegressor])
def test_forest_regressor_from_pickle_equals_sklearn_exactly(tmp_path: Path, forest: type) -> None:
    features, _ = training_data()
    target = features @ np.array([1.0, -2.0, 0.5, 3.0])
    estimator = forest(n_estimators=15, random_state=0).fit(features, target)
    model = load_model(write_pickle(estimator, tmp_path))
    rows = random_rows(300, 4)

    served = model.predict(None, rows.tolist())

    assert model._forest is not None  # type: ignore[attr-defined]
    assert served.predictions == estimator.predict(rows).tolist()
    assert served.probabilities is None
    assert model.signature.outputs == ("prediction",)


def test_string_class_labels_are_served_as_strings(tmp_path: Path) -> None:
    features, labels = training_data(n_classes=3)
    names = np.array(["low", "mid", "high"])[labels]
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, names)
    model = load_model(write_joblib(estimator, tmp_path))

    served = model.predict(None, random_rows(20, 4).tolist())

    assert served.classes == ["high", "low", "mid"]
    assert served.predictions == estimator.predict(random_rows(20, 4)).tolist()
    assert all(isinstance(p, str) for p in served.predictions)


def test_forest_with_missing_values_falls_back_to_sklearn(tmp_path: Path) -> None:
    features, labels = training_data()
    features[::7, 1] = np.nan
    estimator = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    model = load_model(write_joblib(estimator, tmp_path))
    rows = random_rows(10, 4)
    rows[0, 1] = np.nan
    request = [[None if np.isnan(v) else float(v) for v in row] for row in rows]

    served = model.predict(None, request)

    assert served.probabilities == estimator.predict_proba(rows).tolist()


def test_logistic_regression_fitted_on_a_frame_takes_named_columns_in_any_order(tmp_path: Path) -> None:
    features, labels = training_data()
    frame = pd.DataFrame(features, columns=list(FEATURES))
    estimator = LogisticRegression().fit(frame, labels)
    model = load_model(write_joblib(estimator, tmp_path, "model.pkl"))
    rows = random_rows(5, 4)
    shuffled = ["score", "age", "tenure", "income"]
    request = pd.DataFrame(rows, columns=list(FEATURES))[shuffled]

    served = model.predict(shuffled, request.to_numpy().tolist())

    assert model.signature.names == FEATURES
    assert model.signature.n_features == 4
    assert served.predictions == estimator.predict(pd.DataFrame(rows, columns=list(FEATURES))).tolist()
    np.testing.assert_array_equal(served.probabilities, estimator.predict_proba(rows))


def test_pipeline_is_served_through_its_own_predict(tmp_path: Path) -> None:
    features, labels = training_data()
    estimator = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)
    model = load_model(write_joblib(estimator, tmp_path))
    rows = random_rows(8, 4)

    served = model.predict(None, rows.tolist())

    assert served.predictions == estimator.predict(rows).tolist()
    assert served.probabilities == estimator.predict_proba(rows).tolist()
    assert model.signature.describe() == {
        "names": None,
        "n_features": 4,
        "types": None,
        "outputs": ["prediction", "probability"],
    }


def test_nan_where_the_model_cannot_take_it_is_an_input_mismatch(tmp_path: Path) -> None:
    features, labels = training_data()
    model = load_model(write_joblib(LogisticRegression().fit(features, labels), tmp_path))

    with pytest.raises(InputMismatch, match="rejected the input") as caught:
        model.predict(None, [[None, 1.0, 2.0, 3.0]])

    assert caught.value.expected == {"names": None, "n_features": 4, "types": None}


def test_warm_predicts_a_zero_row(tmp_path: Path) -> None:
    features, labels = training_data()
    model = load_model(write_joblib(RandomForestClassifier(n_estimators=3).fit(features, labels), tmp_path))

    model.warm()


def test_a_pickled_object_without_predict_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no predict method"):
        load_model(write_pickle({"weights": [1, 2]}, tmp_path))
