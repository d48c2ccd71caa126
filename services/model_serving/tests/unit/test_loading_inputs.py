"""Rows that do not fit the model's signature: always an InputMismatch that says what was expected."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_serving.loading import InputMismatch, LoadedModel, Prediction, load_model
from serving_helpers import FEATURES, training_data, write_joblib
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def named_model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    features, labels = training_data()
    estimator = LogisticRegression().fit(pd.DataFrame(features, columns=list(FEATURES)), labels)
    return load_model(write_joblib(estimator, tmp_path_factory.mktemp("named")))


EXPECTED = {"names": list(FEATURES), "n_features": 4, "types": None}


def test_missing_and_unknown_columns_are_listed(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch) as caught:
        named_model.predict(["age", "income", "tenure", "sscore"], [[1, 2, 3, 4]])

    assert "missing ['score']" in caught.value.message
    assert "unknown ['sscore']" in caught.value.message
    assert caught.value.found == {"missing": ["score"], "unknown": ["sscore"]}
    assert caught.value.expected == EXPECTED


def test_a_missing_column_alone_is_reported(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch) as caught:
        named_model.predict(["age", "income", "tenure"], [[1, 2, 3]])

    assert caught.value.found == {"missing": ["score"], "unknown": []}


def test_a_column_given_twice_is_reported(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch, match="more than once"):
        named_model.predict(["age", "age", "income", "tenure", "score"], [[1, 1, 2, 3, 4]])


def test_positional_rows_need_every_feature(named_model: LoadedModel) -> None:
    expected = r"expected 4 values in each row \(age, income, tenure, score\), got 3"
    with pytest.raises(InputMismatch, match=expected):
        named_model.predict(None, [[1.0, 2.0, 3.0]])


def test_a_short_row_among_good_ones_is_named(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch, match="row 2 has 3 values, expected 4") as caught:
        named_model.predict(None, [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]])

    assert caught.value.found == {"row": 2, "values": 3}


def test_rows_wider_than_their_columns_are_reported(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch, match="expected 4 values in each row"):
        named_model.predict(list(FEATURES), [[1, 2, 3, 4, 5]])


def test_a_string_value_names_its_row_and_column(named_model: LoadedModel) -> None:
    expected = "row 1, column 'income': expected a number, got 'high'"
    with pytest.raises(InputMismatch, match=expected) as caught:
        named_model.predict(list(FEATURES), [[1, 2, 3, 4], [1, "high", 3, 4]])

    assert caught.value.found == {"row": 1, "column": "income"}


def test_a_numeric_string_is_not_a_number(named_model: LoadedModel) -> None:
    with pytest.raises(InputMismatch, match="column 'score'"):
        named_model.predict(None, [[1, 2, 3, "4.5"]])


@pytest.mark.parametrize("rows", [[], None, "1,2,3,4", [1, 2, 3, 4], [{"age": 1}]])
def test_rows_that_are_not_a_list_of_lists_are_reported(named_model: LoadedModel, rows: Any) -> None:
    with pytest.raises(InputMismatch):
        named_model.predict(None, rows)


def test_booleans_and_integers_are_numbers(named_model: LoadedModel) -> None:
    served = named_model.predict(None, [[True, 2, 3, False]])

    assert served == named_model.predict(None, [[1.0, 2.0, 3.0, 0.0]])


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
json_rows = st.one_of(st.lists(st.lists(json_values, max_size=6), max_size=4), json_values)
column_lists = st.one_of(st.none(), st.lists(st.sampled_from([*FEATURES, "other"]), max_size=6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=column_lists, rows=json_rows)
def test_any_json_request_is_a_prediction_or_an_input_mismatch(
    named_model: LoadedModel, columns: list[str] | None, rows: Any
) -> None:
    try:
        served = named_model.predict(columns, rows)
    except InputMismatch as exc:
        assert exc.expected == EXPECTED
    else:
        assert isinstance(served, Prediction)
        assert len(served.predictions) == len(rows)
