"""The platform's own prediction bodies: `/predict` (the original documents' shape) and
`/api/deployments/{name}/predict`, decoded into Inputs and answered per row."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from model_serving.protocols import (
    ProtocolError,
    decode_deployment_predict,
    decode_predict,
    encode_deployment_predict,
    encode_predict,
)

# the request of the original documents (shared/platform-docs/002.md, "Test the API")
DOCS_FEATURES = [
    1.5,
    -0.3,
    2.1,
    0.8,
    -1.2,
    0.5,
    1.8,
    -0.7,
    2.3,
    0.2,
    -1.5,
    1.1,
    0.9,
    -0.4,
    2.0,
    0.7,
    -1.8,
    1.3,
    0.6,
    -0.9,
]


def body(doc: object) -> bytes:
    return orjson.dumps(doc)


def test_predict_docs_example_is_one_positional_row() -> None:
    inputs = decode_predict(body({"features": DOCS_FEATURES}))
    assert inputs.columns is None
    assert inputs.rows == [DOCS_FEATURES]
    assert inputs.single is True
    assert inputs.request_ids == [None]
    assert inputs.entity == [{}]
    assert inputs.params == {}


def test_predict_nested_rows_are_a_batch() -> None:
    inputs = decode_predict(body({"features": [[1, 2.5, "a"], [3, None, True]]}))
    assert inputs.columns is None
    assert inputs.rows == [[1, 2.5, "a"], [3, None, True]]
    assert inputs.single is False
    assert inputs.request_ids == [None, None]


def test_predict_batch_of_one_row_is_still_a_batch() -> None:
    assert decode_predict(body({"features": [[1.0, 2.0]]})).single is False


def test_predict_object_is_one_named_row() -> None:
    inputs = decode_predict(body({"features": {"age": 41, "country": "FR", "score": 0.5}}))
    assert inputs.columns == ["age", "country", "score"]
    assert inputs.rows == [[41, "FR", 0.5]]
    assert inputs.single is True


def test_predict_list_of_objects_is_a_named_batch_with_missing_values_none() -> None:
    inputs = decode_predict(body({"features": [{"a": 1, "b": 2}, {"b": 3, "c": 4}]}))
    assert inputs.columns == ["a", "b", "c"]
    assert inputs.rows == [[1, 2, None], [None, 3, 4]]


def test_predict_carries_user_id_request_id_entities_and_params() -> None:
    inputs = decode_predict(
        body(
            {
                "features": [[1.0], [2.0]],
                "user_id": "user_123",
                "request_id": "req-9",
                "entities": {"merchant_id": 77},
                "params": {"threshold": 0.7},
            }
        )
    )
    assert inputs.request_ids == ["req-9", "req-9"]
    assert inputs.entity == [{"merchant_id": 77, "user_id": "user_123"}] * 2
    assert inputs.params == {"threshold": 0.7}


def test_predict_with_only_entities_asks_every_feature_of_the_store() -> None:
    inputs = decode_predict(body({"entities": {"user_id": "u1"}}))
    assert inputs.columns == []
    assert inputs.rows == [[]]
    assert inputs.entity == [{"user_id": "u1"}]
    assert inputs.single is True


def test_deployment_instances_rows_and_records() -> None:
    positional = decode_deployment_predict(body({"instances": [[1, 2], [3, 4]]}))
    assert (positional.columns, positional.rows, positional.single) == (None, [[1, 2], [3, 4]], False)
    named = decode_deployment_predict(body({"instances": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]}))
    assert (named.columns, named.rows) == (["x", "y"], [[1, "a"], [2, "b"]])


def test_deployment_flat_instances_are_one_row() -> None:
    inputs = decode_deployment_predict(body({"instances": [1.5, -0.3]}))
    assert (inputs.rows, inputs.single) == ([[1.5, -0.3]], True)


def test_deployment_named_inputs_columns_and_one_row_of_scalars() -> None:
    batch = decode_deployment_predict(body({"inputs": {"x": [1, 2, 3], "y": ["a", "b", "c"]}}))
    assert (batch.columns, batch.rows, batch.single) == (["x", "y"], [[1, "a"], [2, "b"], [3, "c"]], False)
    one = decode_deployment_predict(body({"inputs": {"x": 1, "y": "a"}}))
    assert (one.columns, one.rows, one.single) == (["x", "y"], [[1, "a"]], True)


def test_deployment_inputs_as_rows() -> None:
    inputs = decode_deployment_predict(body({"inputs": [[1, 2], [3, 4]]}))
    assert (inputs.columns, inputs.rows) == (None, [[1, 2], [3, 4]])


def test_deployment_per_row_entities_and_request_ids() -> None:
    inputs = decode_deployment_predict(
        body(
            {
                "instances": [[1], [2]],
                "entities": [{"user_id": "u1"}, {"user_id": "u2", "store": 4}],
                "request_ids": ["r1", None],
            }
        )
    )
    assert inputs.entity == [{"user_id": "u1"}, {"user_id": "u2", "store": 4}]
    assert inputs.request_ids == ["r1", None]


def test_deployment_top_level_user_id_reaches_every_row() -> None:
    inputs = decode_deployment_predict(body({"instances": [[1], [2]], "user_id": 42}))
    assert inputs.entity == [{"user_id": 42}, {"user_id": 42}]


def test_deployment_entities_alone_give_one_featureless_row_each() -> None:
    inputs = decode_deployment_predict(body({"entities": [{"user_id": "a"}, {"user_id": "b"}]}))
    assert (inputs.columns, inputs.rows, inputs.single) == ([], [[], []], False)


def test_user_id_disagreeing_with_entities_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="disagree"):
        decode_predict(body({"features": [1], "user_id": "a", "entities": {"user_id": "b"}}))


def test_encode_predict_one_row_is_the_documents_shape() -> None:
    out = orjson.loads(
        encode_predict(np.array([1]), np.array([[0.25, 0.75]]), model_version="1", single=True, timestamp="T")
    )
    assert out == {"prediction": 1, "probability": [0.25, 0.75], "model_version": "1", "timestamp": "T"}


def test_encode_predict_batch_with_variants_and_request_ids() -> None:
    out = orjson.loads(
        encode_predict(
            np.array(["cat", "dog"]),
            np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32),
            model_version=["3", "4"],
            variants=["control", "treatment"],
            request_ids=["r1", None],
            single=False,
            timestamp="T",
        )
    )
    assert out == {
        "predictions": [
            {
                "prediction": "cat",
                "probability": pytest.approx([0.9, 0.1]),
                "model_version": "3",
                "variant": "control",
                "request_id": "r1",
                "timestamp": "T",
            },
            {
                "prediction": "dog",
                "probability": pytest.approx([0.2, 0.8]),
                "model_version": "4",
                "variant": "treatment",
                "timestamp": "T",
            },
        ]
    }


def test_encode_predict_regressor_has_null_probability_and_a_utc_timestamp() -> None:
    out = orjson.loads(encode_predict([np.float64(2.5)], None, model_version="2", single=True))
    assert out["prediction"] == 2.5
    assert out["probability"] is None
    assert out["timestamp"].endswith("+00:00")


def test_encode_deployment_predict_single_and_batch() -> None:
    single = orjson.loads(
        encode_deployment_predict(
            np.array([0]),
            np.array([[0.6, 0.4]]),
            deployment="fraud-api",
            model="fraud",
            model_version="5",
            variants="control",
            request_ids=["r1"],
            single=True,
            timestamp="T",
        )
    )
    assert single == {
        "prediction": 0,
        "probability": [0.6, 0.4],
        "model_version": "5",
        "variant": "control",
        "request_id": "r1",
        "deployment": "fraud-api",
        "model": "fraud",
        "timestamp": "T",
    }
    batch = orjson.loads(
        encode_deployment_predict(
            np.array([1.5, 2.5]),
            None,
            deployment="d",
            model="m",
            model_version="1",
            single=False,
            timestamp="T",
        )
    )
    assert batch == {
        "deployment": "d",
        "model": "m",
        "predictions": [
            {"prediction": 1.5, "probability": None, "model_version": "1"},
            {"prediction": 2.5, "probability": None, "model_version": "1"},
        ],
        "timestamp": "T",
    }
