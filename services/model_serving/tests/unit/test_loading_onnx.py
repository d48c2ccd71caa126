"""ONNX models on onnxruntime: skl2onnx conversions and a hand-built one-input-per-column graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from model_serving.loading import InputMismatch, load_model
from onnx import TensorProto, helper
from serving_helpers import random_rows, training_data
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression


def _convert(estimator: object, directory: Path, zipmap: bool = True) -> Path:
    options = {} if zipmap else {"options": {id(estimator): {"zipmap": False}}}
    onx = to_onnx(estimator, np.zeros((1, 4), dtype=np.float32), **options)
    (directory / "model.onnx").write_bytes(onx.SerializeToString())
    return directory


def test_forest_classifier_without_zipmap_matches_sklearn(tmp_path: Path) -> None:
    features, labels = training_data(n_classes=3)
    estimator = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(features, labels)
    model = load_model(_convert(estimator, tmp_path, zipmap=False))
    rows = random_rows(200, 4)

    served = model.predict(None, rows.tolist())

    assert model.flavor == "onnx"
    assert model.signature.n_features == 4
    assert model.signature.types == ("float",) * 4
    assert model.signature.outputs == ("label", "probabilities")
    np.testing.assert_allclose(served.probabilities, estimator.predict_proba(rows), atol=1e-6)
    assert served.predictions == estimator.predict(rows).tolist()
    assert served.classes is None


def test_logistic_regression_with_zipmap_gives_classes_from_the_map(tmp_path: Path) -> None:
    features, labels = training_data()
    names = np.array(["stay", "churn"])[labels]
    estimator = LogisticRegression().fit(features, names)
    model = load_model(_convert(estimator, tmp_path))
    rows = random_rows(50, 4)

    served = model.predict(None, rows.tolist())

    assert served.classes == ["churn", "stay"]
    assert served.predictions == estimator.predict(rows).tolist()
    np.testing.assert_allclose(served.probabilities, estimator.predict_proba(rows), atol=1e-6)


def test_regressor_values_are_one_per_row(tmp_path: Path) -> None:
    features, _ = training_data()
    target = features @ np.array([1.0, -2.0, 0.5, 3.0])
    estimator = RandomForestRegressor(n_estimators=5, random_state=0).fit(features, target)
    model = load_model(_convert(estimator, tmp_path))
    rows = random_rows(30, 4)

    served = model.predict(None, rows.tolist())

    np.testing.assert_allclose(served.predictions, estimator.predict(rows), rtol=1e-5, atol=1e-5)
    assert served.probabilities is None
    with pytest.raises(InputMismatch, match="expected 4 values in each row, got 5"):
        model.predict(None, [[1, 2, 3, 4, 5]])


def _per_column_graph(directory: Path) -> Path:
    """y = 2*age + income - count, with `count` an int64 input: one [batch, 1] input per column."""
    inputs = [
        helper.make_tensor_value_info("age", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("income", TensorProto.DOUBLE, [None, 1]),
        helper.make_tensor_value_info("count", TensorProto.INT64, [None, 1]),
    ]
    nodes = [
        helper.make_node("Cast", ["age"], ["age64"], to=TensorProto.DOUBLE),
        helper.make_node("Cast", ["count"], ["count64"], to=TensorProto.DOUBLE),
        helper.make_node("Add", ["age64", "age64"], ["twice"]),
        helper.make_node("Add", ["twice", "income"], ["sum"]),
        helper.make_node("Sub", ["sum", "count64"], ["y"]),
    ]
    output = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])
    graph = helper.make_graph(nodes, "per_column", inputs, [output])
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(onx)
    onnx.save(onx, directory / "model.onnx")
    return directory


def test_one_input_per_column_takes_named_columns_in_any_order(tmp_path: Path) -> None:
    model = load_model(_per_column_graph(tmp_path))

    served = model.predict(["count", "income", "age"], [[3, 10.5, 1.5], [0, 0.25, 2.0]])

    assert model.signature.names == ("age", "income", "count")
    assert model.signature.types == ("float", "double", "long")
    assert served.predictions == [10.5, 4.25]


def test_a_fraction_for_an_integer_input_is_an_input_mismatch(tmp_path: Path) -> None:
    model = load_model(_per_column_graph(tmp_path))

    with pytest.raises(InputMismatch, match="'count' takes integers"):
        model.predict(None, [[1.0, 2.0, 2.5]])


def test_warm_runs_the_session(tmp_path: Path) -> None:
    model = load_model(_per_column_graph(tmp_path))

    model.warm()
