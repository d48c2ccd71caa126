"""MLflow's scoring protocol, checked against MLflow itself: its server's parser
(`mlflow.pyfunc.scoring_server.infer_and_parse_data`, `parse_csv_input`) and its client's serializer
(`dump_input_data`) are the oracles, and its examples (MLflow docs, "Deploy MLflow Model as a Local
Inference Server") are the happy paths."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from mlflow.deployments import PredictionsResponse
from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input
from mlflow.utils.proto_json_utils import dump_input_data
from model_serving.protocols import (
    ProtocolError,
    UnsupportedContentType,
    decode_invocations,
    encode_invocations,
)

JSON = "application/json"

DOCS_EXAMPLES = {
    "dataframe_split": {"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3], [4, 5, 6]]}},
    "dataframe_split_index": {
        "dataframe_split": {"index": [7, 8], "columns": ["a", "b", "c"], "data": [[1, 2, 3], [4, 5, 6]]}
    },
    "dataframe_records": {"dataframe_records": [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}]},
    "instances_records": {"instances": [{"a": "s1", "b": 1}, {"a": "s2", "b": 2}, {"a": "s3", "b": 3}]},
    "inputs_columns": {"inputs": {"a": ["s1", "s2", "s3"], "b": [1, 2, 3]}},
    "inputs_rows": {"inputs": [[1, 2], [3, 4], [5, 6]]},
    "instances_rows": {"instances": [[1.5, 2.5], [3.5, 4.5]]},
    "instances_scalars": {"instances": [1, 2, 3]},
    "split_without_columns": {"dataframe_split": {"data": [[1, 2], [3, 4]]}},
    "split_with_params": {"dataframe_split": {"columns": ["x"], "data": [[1]]}, "params": {"k": 2}},
}


def mlflow_table(doc: dict[str, Any]) -> tuple[list[str] | None, list[list[Any]]]:
    """What `mlflow models serve` hands the model, as (columns, rows)."""
    parsed = infer_and_parse_data({k: v for k, v in doc.items() if k != "params"})
    if isinstance(parsed, pd.DataFrame):
        columns = [str(c) for c in parsed.columns]
        positional = list(parsed.columns) == list(range(parsed.shape[1]))
        return (None if positional else columns), frame_rows(parsed)
    if isinstance(parsed, dict):
        return list(parsed), [list(row) for row in zip(*(v.tolist() for v in parsed.values()), strict=True)]
    array = np.asarray(parsed)
    return None, array.reshape(len(array), -1).tolist()


def frame_rows(frame: pd.DataFrame) -> list[list[Any]]:
    """Rows of Python values, each column keeping its own dtype (NaN as None)."""
    columns = [frame.iloc[:, j].tolist() for j in range(frame.shape[1])]
    return [[None if pd.isna(v) else v for v in row] for row in zip(*columns, strict=True)]


@pytest.mark.parametrize("name", list(DOCS_EXAMPLES))
def test_docs_examples_decode_as_mlflow_parses_them(name: str) -> None:
    doc = DOCS_EXAMPLES[name]
    inputs = decode_invocations(orjson.dumps(doc), JSON)
    assert (inputs.columns, inputs.rows) == mlflow_table(doc)
    assert inputs.params == doc.get("params", {})
    assert inputs.single is False


def test_dataframe_sent_by_mlflows_client_decodes_with_missing_values_as_none() -> None:
    frame = pd.DataFrame({"age": [41, 35], "income": [5200.5, float("nan")], "city": ["Lyon", "Oslo"]})
    body = dump_input_data(frame)  # {"dataframe_split": {"index", "columns", "data"}} with a NaN token
    assert "NaN" in body
    inputs = decode_invocations(body.encode(), "application/json; charset=utf-8")
    assert inputs.columns == ["age", "income", "city"]
    assert inputs.rows == [[41, 5200.5, "Lyon"], [35, None, "Oslo"]]


def test_numpy_array_sent_by_mlflows_client_is_positional() -> None:
    body = dump_input_data(np.array([[1.0, 2.0], [3.0, 4.0]]))
    inputs = decode_invocations(body.encode(), JSON)
    assert (inputs.columns, inputs.rows) == (None, [[1.0, 2.0], [3.0, 4.0]])


def test_dataframe_with_default_integer_columns_is_positional() -> None:
    body = dump_input_data(pd.DataFrame(np.array([[1.0, 2.0]])))  # columns [0, 1]
    assert decode_invocations(body.encode(), JSON).columns is None


def test_docs_instances_with_a_tensor_column_are_rejected_as_not_tabular() -> None:
    doc = {"instances": [{"a": "s1", "b": 1, "c": [1, 2, 3]}]}
    with pytest.raises(ProtocolError, match=r"nested arrays.*\$\.instances\[0\]\.c"):
        decode_invocations(orjson.dumps(doc), JSON)


CSV_CASES = {
    "numbers": "a,b\n1,2.5\n3,4\n",
    "ints_with_missing": "a,b\n1,x\n,y\n",
    "strings_and_bools": 'name,flag,note\n"Smith, J",True,ok\nLee,false,\n',
    "numeric_looking_strings": "code\n001\nA7\n",
    "to_csv_with_index": pd.DataFrame({"a": [1, 2], "b": [0.5, None], "c": ["x", "y"]}).to_csv(),
    "blank_lines_and_short_rows": "a,b,c\n1,2,3\n\n4,5\n",
    "na_tokens": "a,b\nNA,1.5\nnull,nan\n",
    "crlf_and_bom": "\ufeffa,b\r\n1,2\r\n",
}


@pytest.mark.parametrize("name", list(CSV_CASES))
def test_csv_decodes_as_mlflows_pandas_reader(name: str) -> None:
    text = CSV_CASES[name]
    expected = parse_csv_input(io.StringIO(text))
    inputs = decode_invocations(text.encode(), "text/csv")
    assert inputs.columns == [str(c) for c in expected.columns]
    assert inputs.rows == frame_rows(expected)
    assert [type(v) for v in inputs.rows[0]] == [type(v) for v in frame_rows(expected)[0]]


def test_csv_content_type_with_charset() -> None:
    assert decode_invocations(b"x\n1\n", "text/csv; charset=UTF-8").rows == [[1]]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "",
        None,
        "application/vnd.apache.parquet",
        "application/json; format=pandas-split",
    ],
)
def test_other_content_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        decode_invocations(b'{"inputs": [[1]]}', content_type)
    assert caught.value.status_code == 415


def test_a_charset_other_than_utf8_is_unsupported() -> None:
    with pytest.raises(UnsupportedContentType, match="only supports UTF-8"):
        decode_invocations(b'{"inputs": [[1]]}', "application/json; charset=latin-1")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([{"a": 1}], "exactly one of the input fields .* Received a list"),
        ({"dataframe_split": {"data": [[1]]}, "instances": [[1]]}, "exactly one of the input fields"),
        ({"data": [[1]]}, r"Received dictionary with input fields: \['data'\]"),
        (
            {"dataframe_records": {"a": [1]}},
            "Dataframe records format must be a list of records. Got dictionary",
        ),
        ({"dataframe_split": [[1]]}, "Dataframe split format must be a dictionary. Got list"),
        ({"dataframe_split": {"columns": ["a"]}}, "must have 'data' field"),
        ({"dataframe_split": {"data": [[1]], "dtypes": {}}}, "must have 'data' field"),
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}, "columns imply 2"),
        ({"dataframe_split": {"index": [0, 1], "data": [[1]]}}, "'index' must be a list of 1 labels"),
        ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, "named twice"),
        ({"inputs": {"a": [1, 2], "b": [1]}}, "columns need the same length"),
        ({"inputs": [[1]], "params": [1]}, "parameters as a JSON object"),
    ],
)
def test_malformed_requests_answer_like_mlflow(doc: Any, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_invocations(orjson.dumps(doc), JSON)


def test_infinity_is_rejected_even_beside_nan() -> None:
    with pytest.raises(ProtocolError, match="finite number, got Infinity"):
        decode_invocations(b'{"inputs": [[NaN, Infinity]]}', JSON)


def test_csv_rows_longer_than_the_header_are_rejected_with_the_line() -> None:
    with pytest.raises(ProtocolError, match="Expected 2 fields in line 3, saw 3") as caught:
        decode_invocations(b"a,b\n1,2\n3,4,5\n", "text/csv")
    assert caught.value.details["line"] == 3


def test_csv_infinity_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="finite number in column 'a'"):
        decode_invocations(b"a\n1.5\ninf\n", "text/csv")


def test_encode_invocations_reads_back_through_mlflows_client() -> None:
    body = encode_invocations(np.array([1, 0, 1]))
    assert orjson.loads(body) == {"predictions": [1, 0, 1]}
    assert PredictionsResponse.from_json(body.decode()).get_predictions(
        predictions_format="ndarray"
    ).tolist() == [
        1,
        0,
        1,
    ]


def test_encode_invocations_with_probabilities_keeps_predictions_first_class() -> None:
    body = encode_invocations(np.array(["a", "b"]), np.array([[0.7, 0.3], [0.1, 0.9]]))
    doc = orjson.loads(body)
    assert doc["predictions"] == ["a", "b"]
    assert doc["probabilities"] == [[0.7, 0.3], [0.1, 0.9]]
    assert PredictionsResponse.from_json(body.decode()).get_predictions(
        predictions_format="ndarray"
    ).tolist() == [
        "a",
        "b",
    ]


def test_encode_invocations_writes_nan_predictions_as_null() -> None:
    assert orjson.loads(encode_invocations(np.array([1.0, math.nan]))) == {"predictions": [1.0, None]}
