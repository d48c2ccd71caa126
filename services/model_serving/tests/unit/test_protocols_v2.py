"""The Open Inference Protocol v2 (kserve/open-inference-protocol, specification/protocol/inference_rest.md):
inference requests into Inputs, responses and model metadata out."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from model_serving.protocols import (
    DATATYPES,
    ProtocolError,
    decode_v2_infer,
    encode_v2_infer,
    v2_datatype,
    v2_model_metadata,
)


def infer(*tensors: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(tensors), **extra})


def tensor(name: str, shape: list[int], datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_spec_example_flat_uint32_tensor_is_row_major() -> None:
    # the spec's "input0" (its "input1", shape [3] with one element, contradicts its own shape rule)
    inputs = decode_v2_infer(
        orjson.dumps(
            {"id": "42", "inputs": [tensor("input0", [2, 2], "UINT32", [1, 2, 3, 4])], "outputs": []}
        )
    )
    assert inputs.columns is None
    assert inputs.rows == [[1, 2], [3, 4]]
    assert inputs.request_ids == ["42", "42"]
    assert inputs.outputs == []


def test_spec_natural_nested_representation_matches_the_flat_one() -> None:
    nested = decode_v2_infer(infer(tensor("input0", [2, 2], "UINT32", [[1, 2], [4, 5]])))
    flat = decode_v2_infer(infer(tensor("input0", [2, 2], "UINT32", [1, 2, 4, 5])))
    assert nested.rows == flat.rows == [[1, 2], [4, 5]]


def test_kserve_sklearn_iris_request() -> None:
    data = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
    inputs = decode_v2_infer(infer(tensor("input-0", [2, 4], "FP32", data)))
    assert (inputs.columns, inputs.rows, inputs.single) == (None, data, False)


def test_one_input_per_column_gives_named_rows() -> None:
    inputs = decode_v2_infer(
        infer(
            tensor("age", [3], "INT64", [41, 35, 29]),
            tensor("city", [3, 1], "BYTES", [["Lyon"], ["Oslo"], ["Pune"]]),
            tensor("vip", [3, 1], "BOOL", [True, False, True]),
            tensor("score", [3], "FP64", [0.5, 1, -2.25]),
            parameters={"content_type": "pd"},
        )
    )
    assert inputs.columns == ["age", "city", "vip", "score"]
    assert inputs.rows == [[41, "Lyon", True, 0.5], [35, "Oslo", False, 1], [29, "Pune", True, -2.25]]
    assert inputs.params == {"content_type": "pd"}


def test_mlserver_pandas_content_type_makes_a_single_n_by_1_input_a_named_column() -> None:
    body = infer(tensor("x", [2, 1], "FP64", [1.0, 2.0]), parameters={"content_type": "pd"})
    assert decode_v2_infer(body).columns == ["x"]
    assert decode_v2_infer(infer(tensor("x", [2, 1], "FP64", [1.0, 2.0]))).columns is None


def test_a_single_rank_one_input_is_one_named_column() -> None:
    inputs = decode_v2_infer(infer(tensor("amount", [2], "FP32", [1.5, 2.5])))
    assert (inputs.columns, inputs.rows) == (["amount"], [[1.5], [2.5]])


def test_requested_outputs_and_request_parameters_are_kept() -> None:
    body = infer(
        tensor("x", [1, 2], "FP64", [1.0, 2.0]),
        outputs=[{"name": "predict_proba"}],
        parameters={"threshold": 0.5},
    )
    inputs = decode_v2_infer(body)
    assert inputs.outputs == ["predict_proba"]
    assert inputs.params == {"threshold": 0.5}
    assert inputs.request_ids == [None]


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ([tensor("x", [2, 2], "FP32", [1, 2, 3])], r"3 elements but shape \[2, 2\] needs 4"),
        ([tensor("x", [2, 2], "FP32", [[1, 2], [3]])], r"does not match shape \[2, 2\]"),
        ([tensor("x", [1, 2], "FLOAT", [1, 2])], "Unknown datatype 'FLOAT'"),
        (
            [tensor("x", [1, 2], "INT8", [1, 300])],
            r"INT8 data \(an integer in \[-128, 127\]\), got a number 300",
        ),
        ([tensor("x", [1, 2], "INT32", [1, 2.5])], "INT32 data"),
        ([tensor("x", [1, 1], "UINT8", [-1])], "UINT8 data"),
        ([tensor("x", [1, 1], "INT64", [2**63])], "INT64 data"),
        ([tensor("x", [1, 1], "BOOL", [1])], "BOOL data"),
        ([tensor("x", [1, 1], "FP16", [70000.0])], "FP16 data"),
        ([tensor("x", [1, 1], "FP32", [1e39])], "FP32 data"),
        ([tensor("x", [1, 1], "FP64", ["1.5"])], "FP64 data"),
        ([tensor("x", [1, 1], "FP64", [True])], "FP64 data"),
        ([tensor("x", [1, 1], "BYTES", [5])], "BYTES data"),
        ([tensor("x", [1, 1], "BYTES", ["y" * 1025])], "BYTES data"),
        ([tensor("x", [1, 2, 2], "FP32", [1, 2, 3, 4])], r"shape of \[n\] or \[n, k\]"),
        ([tensor("x", [-1, 2], "FP32", [1, 2])], r"shape of \[n\] or \[n, k\]"),
        ([tensor("x", [0, 2], "FP32", [])], "between 1 and 10000 rows"),
        ([tensor("x", [10_001, 1], "FP32", [0.0] * 10_001)], "between 1 and 10000 rows"),
        ([tensor("a", [2], "FP32", [1, 2]), tensor("b", [3], "FP32", [1, 2, 3])], "one column of shape"),
        ([tensor("a", [2], "FP32", [1, 2]), tensor("a", [2], "FP32", [1, 2])], "named twice"),
        (
            [tensor("a", [2, 2], "FP32", [1, 2, 3, 4]), tensor("b", [2], "FP32", [1, 2])],
            "one column of shape",
        ),
        ([{"name": "x", "shape": [1, 1], "datatype": "FP32"}], "lacks data"),
        ([[1, 2]], "Expected an input tensor object"),
        ([], "non-empty array of input tensors"),
    ],
)
def test_bad_tensors_are_protocol_errors(tensors: list[Any], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_v2_infer(infer(*tensors))


def test_bad_tensor_error_says_where() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_v2_infer(infer(tensor("x", [2, 2], "INT32", [[1, 2], [3, "4"]])))
    assert caught.value.details["path"] == "$.inputs[0].data[1][1]"


def test_unknown_requested_output_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="outputs are predict, predict_proba"):
        decode_v2_infer(infer(tensor("x", [1, 1], "FP32", [1.0]), outputs=[{"name": "logits"}]))


def test_encode_classifier_response() -> None:
    out = orjson.loads(
        encode_v2_infer(
            "iris", "3", "42", np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
        )
    )
    assert out["model_name"] == "iris"
    assert out["model_version"] == "3"
    assert out["id"] == "42"
    assert out["outputs"][0] == {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 0]}
    proba = out["outputs"][1]
    assert (proba["name"], proba["shape"], proba["datatype"]) == ("predict_proba", [2, 2], "FP64")
    assert proba["data"] == pytest.approx([0.2, 0.8, 0.9, 0.1])
    assert "parameters" not in out


def test_encode_keeps_only_the_requested_outputs_and_leaves_out_a_missing_id() -> None:
    out = orjson.loads(
        encode_v2_infer("m", None, None, ["a"], [[0.5, 0.5]], outputs=["predict_proba"], parameters={"x": 1})
    )
    assert [o["name"] for o in out["outputs"]] == ["predict_proba"]
    assert "id" not in out
    assert "model_version" not in out
    assert out["parameters"] == {"x": 1}


def test_encode_regressor_has_only_predict() -> None:
    out = orjson.loads(encode_v2_infer("m", "1", "r", np.array([1.5, 2.5]), None))
    assert out["outputs"] == [{"name": "predict", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]}]


@pytest.mark.parametrize(
    ("values", "datatype"),
    [
        (np.array([True]), "BOOL"),
        (np.array([1], dtype=np.int8), "INT8"),
        (np.array([1], dtype=np.uint16), "UINT16"),
        (np.array([1], dtype=np.int32), "INT32"),
        (np.array([1], dtype=np.uint64), "UINT64"),
        (np.array([1.0], dtype=np.float16), "FP16"),
        (np.array([1.0], dtype=np.float32), "FP32"),
        (np.array([1.0]), "FP64"),
        (np.array(["a"]), "BYTES"),
        (np.array(["a", 1], dtype=object), "BYTES"),
        ([1, 2], "INT64"),
    ],
)
def test_output_datatypes_follow_numpy_dtypes(values: Any, datatype: str) -> None:
    assert v2_datatype(values) == datatype
    assert datatype in DATATYPES


def test_object_predictions_are_sent_as_strings() -> None:
    out = orjson.loads(encode_v2_infer("m", "1", None, np.array(["a", 1], dtype=object), None))
    assert out["outputs"][0]["data"] == ["a", "1"]


def test_model_metadata_shape() -> None:
    doc = v2_model_metadata(
        "iris", ["1", "2"], "sklearn", [("input-0", "FP64", [-1, 4])], [("predict", "INT64", [-1])]
    )
    assert doc == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
    }
    with pytest.raises(ValueError, match="unknown OIP datatype"):
        v2_model_metadata("m", None, "onnx_onnxv1", [("x", "FLOAT", [1])], [])
