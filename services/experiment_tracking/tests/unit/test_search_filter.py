"""The search language's parser: the trees it builds and the errors it reports, without a database."""

from __future__ import annotations

import pytest
from experiment_tracking.search import (
    And,
    Comparison,
    InvalidFilter,
    Or,
    OrderTerm,
    parse_experiment_filter,
    parse_order_by,
    parse_run_filter,
)
from mlops_kit.errors import BadRequest


def run_error(text: str) -> InvalidFilter:
    with pytest.raises(InvalidFilter) as caught:
        parse_run_filter(text)
    return caught.value


def order_error(items: list[str], kind: str = "runs") -> InvalidFilter:
    with pytest.raises(InvalidFilter) as caught:
        parse_order_by(items, kind)  # type: ignore[arg-type]
    return caught.value


# ---- valid run filters


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_empty_filter_is_no_condition(text: str | None) -> None:
    assert parse_run_filter(text) is None


@pytest.mark.parametrize(
    ("prefix", "entity"),
    [
        ("metric", "metric"),
        ("metrics", "metric"),
        ("param", "param"),
        ("params", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tag", "tag"),
        ("tags", "tag"),
    ],
)
def test_entity_prefix_aliases(prefix: str, entity: str) -> None:
    value = "1" if entity == "metric" else "'1'"
    parsed = parse_run_filter(f"{prefix}.k = {value}")
    assert parsed == Comparison(entity, "k", "=", 1 if entity == "metric" else "1")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["attribute", "attributes", "attr", "run", ""])
def test_attribute_prefix_aliases_and_bare_attributes(prefix: str) -> None:
    text = f"{prefix}.status = 'FINISHED'" if prefix else "status = 'FINISHED'"
    assert parse_run_filter(text) == Comparison("attribute", "status", "=", "FINISHED")


@pytest.mark.parametrize("prefix", ["dataset", "datasets"])
def test_dataset_prefix_aliases(prefix: str) -> None:
    assert parse_run_filter(f"{prefix}.context = 'eval'") == Comparison("dataset", "context", "=", "eval")


def test_key_is_everything_after_the_first_dot() -> None:
    assert parse_run_filter("metrics.val.loss < 1") == Comparison("metric", "val.loss", "<", 1)


def test_backtick_quoted_key_may_hold_spaces_and_symbols() -> None:
    assert parse_run_filter("metrics.`my metric/1` >= 2") == Comparison("metric", "my metric/1", ">=", 2)


def test_double_quoted_key() -> None:
    assert parse_run_filter("tags.\"mlflow.user\" = 'ann'") == Comparison("tag", "mlflow.user", "=", "ann")


def test_doubled_backtick_in_a_quoted_key_is_one_backtick() -> None:
    assert parse_run_filter("params.`a``b` = 'x'") == Comparison("param", "a`b", "=", "x")


def test_created_is_start_time_and_run_name_aliases() -> None:
    assert parse_run_filter("created > 5") == Comparison("attribute", "start_time", ">", 5)
    assert parse_run_filter("attributes.`Run name` = 'x'") == Comparison("attribute", "run_name", "=", "x")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1),
        ("-3", -3),
        ("+2", 2),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("-1.5E-3", -0.0015),
        ("999999999999999999", 999999999999999999),
        ("9" * 30, 1e30),
        ("9" * 8000, float("inf")),  # int() refuses a literal this long: was a 500
    ],
)
def test_number_literals(literal: str, value: float) -> None:
    parsed = parse_run_filter(f"metrics.m > {literal}")
    assert parsed == Comparison("metric", "m", ">", value)
    assert isinstance(parsed, Comparison)
    assert type(parsed.value) is type(value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'rf'", "rf"),
        ('"rf"', "rf"),
        ("'it''s'", "it's"),
        (r"'it\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        (r"'a\\b'", "a\\b"),
        (r"'50\%'", "50\\%"),
        ("''", ""),
    ],
)
def test_string_literals_and_their_escapes(literal: str, value: str) -> None:
    assert parse_run_filter(f"params.p = {literal}") == Comparison("param", "p", "=", value)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_metric_comparators(op: str) -> None:
    assert parse_run_filter(f"metrics.m {op} 1") == Comparison("metric", "m", op, 1)  # type: ignore[arg-type]


def test_comparison_without_spaces() -> None:
    assert parse_run_filter("metrics.acc>=0.9") == Comparison("metric", "acc", ">=", 0.9)


def test_like_and_ilike_keywords_are_case_insensitive() -> None:
    assert parse_run_filter("params.p like 'a%'") == Comparison("param", "p", "LIKE", "a%")
    assert parse_run_filter("params.p IlIkE 'a%'") == Comparison("param", "p", "ILIKE", "a%")


def test_in_and_not_in_take_a_tuple_of_strings() -> None:
    assert parse_run_filter("params.p IN ('a', \"b\")") == Comparison("param", "p", "IN", ("a", "b"))
    assert parse_run_filter("run_id not in ('x')") == Comparison("attribute", "run_id", "NOT IN", ("x",))


def test_is_null_and_is_not_null() -> None:
    assert parse_run_filter("tags.t IS NULL") == Comparison("tag", "t", "IS NULL")
    assert parse_run_filter("params.p is not null") == Comparison("param", "p", "IS NOT NULL")


def test_and_is_case_insensitive_and_builds_one_flat_and() -> None:
    parsed = parse_run_filter("metrics.a > 1 and metrics.b > 2 AND metrics.c > 3")
    assert parsed == And(
        (
            Comparison("metric", "a", ">", 1),
            Comparison("metric", "b", ">", 2),
            Comparison("metric", "c", ">", 3),
        )
    )


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (Comparison("metric", k, ">", 1) for k in "abc")
    assert parse_run_filter("metrics.a > 1 or metrics.b > 1 and metrics.c > 1") == Or((a, And((b, c))))


def test_parentheses_override_precedence() -> None:
    a, b, c = (Comparison("metric", k, ">", 1) for k in "abc")
    assert parse_run_filter("(metrics.a > 1 or metrics.b > 1) and metrics.c > 1") == And((Or((a, b)), c))


def test_nested_groups_of_the_same_kind_are_flattened() -> None:
    a, b, c = (Comparison("metric", k, ">", 1) for k in "abc")
    assert parse_run_filter("((metrics.a > 1 and metrics.b > 1)) and (metrics.c > 1)") == And((a, b, c))


def test_time_attributes_accept_numbers() -> None:
    assert parse_run_filter("attributes.end_time <= 1700000000000") == Comparison(
        "attribute", "end_time", "<=", 1700000000000
    )


# ---- run filter errors


def test_error_names_the_position_and_what_was_expected() -> None:
    error = run_error("metrics.accuracy foo")
    assert error.message == (
        "invalid filter at position 17: expected a comparison operator after 'metrics.accuracy', got 'foo'"
    )
    assert error.details == {"position": 17, "filter": "metrics.accuracy foo"}


def test_invalid_filter_is_a_bad_request_with_its_own_code() -> None:
    error = run_error("x")
    assert isinstance(error, BadRequest)
    assert (error.status_code, error.code) == (400, "INVALID_FILTER")


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ("metricz.a > 1", 0, "unknown entity 'metricz'"),
        ("attributes.colour = 'x'", 0, "unknown attribute 'colour'"),
        ("colour = 'x'", 0, "unknown attribute 'colour'"),
        ("datasets.size = 'x'", 0, "unknown dataset 'size'"),
        ("metrics.x LIKE 'a'", 10, "operator LIKE is not allowed for metric 'x'"),
        ("metrics.x IS NULL", 10, "operator IS NULL is not allowed for metric 'x'"),
        ("metrics.x IN (1)", 10, "operator IN is not allowed for metric 'x'"),
        ("params.x > 'a'", 9, "operator > is not allowed for param 'x'"),
        ("run_id LIKE 'a%'", 7, "operator LIKE is not allowed for attribute 'run_id'"),
        ("status IS NULL", 7, "operator IS NULL is not allowed for attribute 'status'"),
        ("start_time LIKE '1'", 11, "operator LIKE is not allowed for attribute 'start_time'"),
        ("metrics.x > 'a'", 12, "expected a number after 'metrics.x >', got \"'a'\""),
        ("start_time > '1'", 13, "expected a number after 'start_time >'"),
        ("params.x = 1", 11, "expected a quoted string after 'params.x =', got '1'"),
        ("params.x = rf", 11, "expected a quoted string after 'params.x =', got 'rf'"),
        ("params.x =", 10, "expected a quoted string after 'params.x =', got the end of the text"),
        ("params.x = 'abc", 11, "unterminated quoted text starting with '"),
        ("params.`abc = 'x'", 7, "unterminated quoted text starting with `"),
        ("params.x = 'a' ; drop", 15, "unexpected character ';'"),
        ("metrics.a == 1", 11, "expected a number after 'metrics.a =', got '='"),
        ("metrics.a > 1abc", 12, "invalid number '1abc'"),
        ("metrics.a > 1 and", 17, "expected a comparison such as metrics.accuracy > 0.9, or '('"),
        ("metrics.a > 1 metrics.b > 2", 14, "expected AND, OR or the end of the filter, got 'metrics.b'"),
        ("and metrics.a > 1", 0, "expected a comparison such as metrics.accuracy > 0.9, or '(', got 'and'"),
        ("(metrics.a > 1", 14, "expected AND, OR or ')', got the end of the text"),
        ("metrics.a > 1)", 13, "expected AND, OR or the end of the filter, got ')'"),
        ("()", 1, "expected a comparison such as metrics.accuracy > 0.9, or '(', got ')'"),
        ("'a' = params.x", 0, "expected a comparison such as metrics.accuracy > 0.9, or '(', got \"'a'\""),
        ("params.a IN 'x'", 12, "expected '(' after 'params.a IN', got \"'x'\""),
        ("params.a IN ('x',)", 17, "expected a quoted string after 'params.a IN', got ')'"),
        ("params.a IN ()", 13, "expected a quoted string after 'params.a IN', got ')'"),
        ("params.a IN ('x' 'y')", 17, "expected ',' or ')', got \"'y'\""),
        ("params.a NOT LIKE 'x'", 13, "expected IN after NOT, got 'LIKE'"),
        ("params.a IS 'x'", 12, "expected NULL or NOT NULL after IS, got \"'x'\""),
        ("params.a IS NOT 'x'", 16, "expected NULL after IS NOT"),
        ("metrics. > 1", 8, "expected a key after 'metrics.'"),
        ("metrics.`` > 1", 8, "expected a key after 'metrics.', got an empty quoted key"),
        (r"params.a LIKE 'x\\'", 14, "a LIKE pattern cannot end with the escape character"),
    ],
)
def test_run_filter_errors(text: str, position: int, problem: str) -> None:
    error = run_error(text)
    assert error.position == position
    assert error.details["position"] == position
    assert error.message.startswith(f"invalid filter at position {position}: {problem}")


def test_parentheses_nested_too_deep_are_an_invalid_filter() -> None:
    assert parse_run_filter("(" * 32 + "metrics.a > 1" + ")" * 32) == Comparison("metric", "a", ">", 1)
    error = run_error("(" * 2000 + "metrics.a > 1" + ")" * 2000)
    assert error.position == 32
    assert "parentheses nest deeper than 32 levels" in error.message


def test_error_after_a_valid_prefix_points_into_the_second_comparison() -> None:
    text = "metrics.acc > 0.9 and params.model LIKE 1"
    assert run_error(text).position == text.index("1")


# ---- experiment filters


def test_experiment_filter_forms() -> None:
    assert parse_experiment_filter("name LIKE '%x%'") == Comparison("attribute", "name", "LIKE", "%x%")
    assert parse_experiment_filter("attribute.name = 'a'") == Comparison("attribute", "name", "=", "a")
    assert parse_experiment_filter("tags.k = 'v'") == Comparison("tag", "k", "=", "v")
    assert parse_experiment_filter("creation_time > 123") == Comparison(
        "attribute", "creation_time", ">", 123
    )
    assert parse_experiment_filter("last_update_time <= 9") == Comparison(
        "attribute", "last_update_time", "<=", 9
    )


def test_experiment_ids_become_integers() -> None:
    parsed = parse_experiment_filter("experiment_id IN ('1', 2)")
    assert parsed == Comparison("attribute", "experiment_id", "IN", (1, 2))
    assert parse_experiment_filter("experiment_id = '7'") == Comparison("attribute", "experiment_id", "=", 7)


@pytest.mark.parametrize(
    ("text", "position", "problem"),
    [
        ("metrics.a > 1", 0, "unknown entity 'metrics'"),
        ("run.name = 'a'", 0, "unknown entity 'run'"),
        ("status = 'a'", 0, "unknown attribute 'status'"),
        ("experiment_id = 'abc'", 16, "expected an integer id after 'experiment_id ='"),
        ("experiment_id = 1.5", 16, "expected an integer id"),
        ("experiment_id LIKE '1'", 14, "operator LIKE is not allowed for attribute 'experiment_id'"),
        ("name > 'a'", 5, "operator > is not allowed for attribute 'name'"),
    ],
)
def test_experiment_filter_errors(text: str, position: int, problem: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_experiment_filter(text)
    assert caught.value.position == position
    assert caught.value.message.startswith(f"invalid filter at position {position}: {problem}")


# ---- order_by


@pytest.mark.parametrize("items", [None, []])
def test_no_order_by_is_no_terms(items: list[str] | None) -> None:
    assert parse_order_by(items) == []


@pytest.mark.parametrize(
    ("item", "term"),
    [
        ("metrics.f1 DESC", OrderTerm("metric", "f1", False)),
        ("params.lr ASC", OrderTerm("param", "lr", True)),
        ("tags.x", OrderTerm("tag", "x", True)),
        ("attributes.start_time desc", OrderTerm("attribute", "start_time", False)),
        ("start_time", OrderTerm("attribute", "start_time", True)),
        ("created DESC", OrderTerm("attribute", "start_time", False)),
        ("metrics.`val loss` DESC", OrderTerm("metric", "val loss", False)),
        ("run_id", OrderTerm("attribute", "run_id", True)),
    ],
)
def test_run_order_terms(item: str, term: OrderTerm) -> None:
    assert parse_order_by([item]) == [term]


def test_experiment_order_terms() -> None:
    parsed = parse_order_by(["name", "experiment_id DESC", "last_update_time"], "experiments")
    assert parsed == [
        OrderTerm("attribute", "name"),
        OrderTerm("attribute", "experiment_id", False),
        OrderTerm("attribute", "last_update_time"),
    ]


def test_order_error_names_the_item_index_and_position() -> None:
    error = order_error(["metrics.a", "metrics.f1 UP"])
    assert (
        error.message
        == "invalid order_by[1] at position 11: expected ASC or DESC after 'metrics.f1', got 'UP'"
    )
    assert error.details == {"position": 11, "order_by": 1, "clause": "metrics.f1 UP"}


@pytest.mark.parametrize(
    ("item", "position", "problem"),
    [
        ("metrics.f1 DESC extra", 16, "expected the end of the clause, got 'extra'"),
        ("", 0, "expected a column to order by"),
        ("DESC", 0, "expected a column to order by"),
        ("colour", 0, "unknown attribute 'colour'"),
        ("datasets.name", 0, "cannot order by 'datasets'"),
        ("foo.bar", 0, "unknown entity 'foo'"),
        ("metrics.a, metrics.b", 9, "expected ASC or DESC after 'metrics.a', got ','"),
    ],
)
def test_run_order_errors(item: str, position: int, problem: str) -> None:
    error = order_error([item])
    assert error.position == position
    assert error.message.startswith(f"invalid order_by[0] at position {position}: {problem}")


def test_ordering_twice_by_the_same_column_is_an_error() -> None:
    error = order_error(["metrics.a", "metric.a DESC"])
    assert error.message == "invalid order_by[1] at position 0: metric 'a' is ordered by twice"


@pytest.mark.parametrize(
    ("item", "problem"),
    [("tags.x", "cannot order by 'tags'"), ("start_time", "unknown attribute 'start_time'")],
)
def test_experiment_order_errors(item: str, problem: str) -> None:
    assert order_error([item], "experiments").message.startswith(
        f"invalid order_by[0] at position 0: {problem}"
    )
