"""Compiled searches against a schema built by the migrations, on SQLite and on real PostgreSQL.

One small dataset per backend, written once and only read by the tests:

    run  name     status    user  start  end   stage    exp  acc   model  team    datasets
    r1   Alpha    FINISHED  ann   1000   1500  active   1    0.5   rf     Vision  mnist/d1 (training)
    r2   alpha    FINISHED  bob   2000   2600  active   1    0.9   RF     vision  cifar/d2 (eval)
    r3   beta_1   FAILED    ann   3000   -     active   1    NaN   xgb    -       mnist/d3 (eval)
    r4   beta%2   RUNNING   bob   4000   -     active   1    0.7   rf_2   nlp     -
    r5   gamma    FINISHED  cat   4000   4100  active   1    -     -      -       -
    r6   gone     FINISHED  ann   5000   5100  deleted  1    0.95  rf     -       -
    r7   other    FINISHED  ann   6000   -     active   2    0.99  -      -       -

plus experiments 1-4 below and the migration's "Default" experiment 0, its times pinned to 10.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from experiment_tracking.search import (
    ViewType,
    experiment_search_query,
    parse_experiment_filter,
    parse_order_by,
    parse_run_filter,
    run_search_query,
)
from experiment_tracking.tables import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    Param,
    Run,
    RunDataset,
    RunTag,
)
from mlops_kit.db import make_engine, run_migrations
from mlops_kit.errors import BadRequest
from sqlalchemy import Engine, insert, update

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
NAN = float("nan")

RUNS = [
    # id, name, status, user, start, end, stage, experiment
    ("r1", "Alpha", "FINISHED", "ann", 1000, 1500, "active", 1),
    ("r2", "alpha", "FINISHED", "bob", 2000, 2600, "active", 1),
    ("r3", "beta_1", "FAILED", "ann", 3000, None, "active", 1),
    ("r4", "beta%2", "RUNNING", "bob", 4000, None, "active", 1),
    ("r5", "gamma", "FINISHED", "cat", 4000, 4100, "active", 1),
    ("r6", "gone", "FINISHED", "ann", 5000, 5100, "deleted", 1),
    ("r7", "other", "FINISHED", "ann", 6000, None, "active", 2),
]
METRICS = {
    "acc": {"r1": 0.5, "r2": 0.9, "r3": NAN, "r4": 0.7, "r6": 0.95, "r7": 0.99},
    "val.loss": {"r1": 1500.0, "r2": -0.002, "r4": 0.0},
    "my metric": {"r2": 1.0},
}
PARAMS = {
    "model": {"r1": "rf", "r2": "RF", "r3": "xgb", "r4": "rf_2", "r6": "rf"},
    "lr": {"r1": "0.1", "r2": "0.01", "r3": "0.1"},
}
TAGS = {
    "team": {"r1": "Vision", "r2": "vision", "r4": "nlp"},
    "mlflow.user": {"r1": "ann", "r2": "bob"},
    # characters that mean something to GLOB must stay literal in a LIKE
    "pattern": {"r4": "aXb1Z", "r5": "a*b[1]?"},
}
DATASETS = [("r1", "mnist", "d1", "training"), ("r2", "cifar", "d2", "eval"), ("r3", "mnist", "d3", "eval")]
EXPERIMENTS = [
    # id, name, stage, created, updated
    (1, "Vision models", "active", 100, 900),
    (2, "nlp-models", "active", 200, 200),
    (3, "Old_stuff", "deleted", 50, 300),
    (4, "vision tuning", "active", 200, 500),
]
EXPERIMENT_TAGS = [(1, "team", "vision"), (2, "team", "NLP"), (4, "owner", "ann")]


def _rows() -> dict[Any, list[dict[str, Any]]]:
    experiments = [
        {"id": i, "name": n, "artifact_location": f"/a/{i}", "lifecycle_stage": s}
        | {"creation_time": c, "last_update_time": u}
        for i, n, s, c, u in EXPERIMENTS
    ]
    runs = [
        {"id": i, "name": n, "status": st, "user_id": u, "start_time": t0, "end_time": t1}
        | {"lifecycle_stage": stage, "experiment_id": e, "artifact_uri": f"/a/{e}/{i}"}
        for i, n, st, u, t0, t1, stage, e in RUNS
    ]
    metrics = [
        {"run_id": r, "key": k, "value": 0.0 if v != v else v, "is_nan": v != v, "timestamp": 1, "step": 0}
        for k, values in METRICS.items()
        for r, v in values.items()
    ]
    datasets = [
        {"run_id": r, "name": n, "digest": d, "source_type": "local", "source": "/data"}
        | {"tags": {"mlflow.data.context": c}}
        for r, n, d, c in DATASETS
    ]
    return {
        Experiment: experiments,
        ExperimentTag: [{"experiment_id": e, "key": k, "value": v} for e, k, v in EXPERIMENT_TAGS],
        Run: runs,
        LatestMetric: metrics,
        Param: _key_values(PARAMS),
        RunTag: _key_values(TAGS),
        RunDataset: datasets,
    }


def _key_values(table: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    return [{"run_id": r, "key": k, "value": v} for k, values in table.items() for r, v in values.items()]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        yield from _loaded(f"sqlite:///{tmp_path_factory.mktemp('search')}/tracking.db")
        return
    from mlops_kit.testing import fresh_postgres_database

    with fresh_postgres_database("tracking_search") as url:
        yield from _loaded(url)


def _loaded(url: str) -> Iterator[Engine]:
    run_migrations(url, MIGRATIONS)
    engine = make_engine(url, pool_size=2)
    with engine.begin() as conn:
        conn.execute(update(Experiment.__table__).values(creation_time=10, last_update_time=10))
        for table, rows in _rows().items():
            conn.execute(insert(table.__table__), rows)
    yield engine
    engine.dispose()


def run_ids(
    db: Engine,
    filter: str | None = None,
    order_by: list[str] | None = None,
    *,
    experiment_ids: Sequence[int] = (1,),
    view: ViewType = "ACTIVE_ONLY",
) -> list[str]:
    query = run_search_query(
        parse_run_filter(filter), parse_order_by(order_by), experiment_ids=list(experiment_ids), view=view
    )
    with db.connect() as conn:
        return list(conn.scalars(query))


def experiment_ids(
    db: Engine, filter: str | None = None, order_by: list[str] | None = None, view: ViewType = "ACTIVE_ONLY"
) -> list[int]:
    query = experiment_search_query(
        parse_experiment_filter(filter), parse_order_by(order_by, "experiments"), view
    )
    with db.connect() as conn:
        return list(conn.scalars(query))


# ---- run filters


def test_no_filter_returns_active_runs_by_start_time_desc_then_run_id(db: Engine) -> None:
    assert run_ids(db) == ["r4", "r5", "r3", "r2", "r1"]


def test_metric_comparison_never_matches_nan_stored_as_zero(db: Engine) -> None:
    assert run_ids(db, "metrics.acc < 0.6") == ["r1"]


def test_metric_comparison_skips_runs_without_the_metric(db: Engine) -> None:
    assert run_ids(db, "metrics.acc > 0.6") == ["r4", "r2"]


def test_metric_not_equal_never_matches_nan(db: Engine) -> None:
    assert run_ids(db, "metrics.acc != 0.5") == ["r4", "r2"]


def test_metric_key_with_dots_compares_negative_and_scientific_numbers(db: Engine) -> None:
    assert run_ids(db, "metrics.val.loss < 0") == ["r2"]
    assert run_ids(db, "metrics.val.loss >= 1.5e3") == ["r1"]


def test_backtick_quoted_metric_key_matches(db: Engine) -> None:
    assert run_ids(db, "metrics.`my metric` = 1") == ["r2"]


def test_param_equality_is_case_sensitive(db: Engine) -> None:
    assert run_ids(db, "params.model = 'rf'") == ["r1"]


def test_like_is_case_sensitive(db: Engine) -> None:
    assert run_ids(db, "params.model LIKE 'rf%'") == ["r4", "r1"]


def test_ilike_is_case_insensitive(db: Engine) -> None:
    assert run_ids(db, "params.model ILIKE 'rf%'") == ["r4", "r2", "r1"]


def test_like_underscore_is_a_wildcard_unless_escaped(db: Engine) -> None:
    assert run_ids(db, "attributes.run_name LIKE 'beta_%'") == ["r4", "r3"]
    assert run_ids(db, r"attributes.run_name LIKE 'beta\_%'") == ["r3"]


def test_like_percent_escaped_with_backslash_is_literal(db: Engine) -> None:
    assert run_ids(db, r"attributes.run_name LIKE 'beta\%2'") == ["r4"]


def test_like_treats_glob_characters_literally(db: Engine) -> None:
    assert run_ids(db, "tags.pattern LIKE 'a*b[1]?'") == ["r5"]
    assert run_ids(db, "tags.pattern LIKE 'a*%'") == ["r5"]


def test_run_name_ilike_ignores_case_and_equality_does_not(db: Engine) -> None:
    assert run_ids(db, "attributes.run_name ILIKE 'ALPHA'") == ["r2", "r1"]
    assert run_ids(db, "run_name = 'alpha'") == ["r2"]


def test_param_in_matches_any_listed_value(db: Engine) -> None:
    assert run_ids(db, "params.model IN ('rf', 'xgb')") == ["r3", "r1"]


def test_param_not_in_requires_the_param_to_exist(db: Engine) -> None:
    assert run_ids(db, "params.model NOT IN ('rf')") == ["r4", "r3", "r2"]


def test_tag_is_null_means_the_run_has_no_such_tag(db: Engine) -> None:
    assert run_ids(db, "tags.team IS NULL") == ["r5", "r3"]
    assert run_ids(db, "tags.team IS NOT NULL") == ["r4", "r2", "r1"]


def test_param_is_null_means_the_run_has_no_such_param(db: Engine) -> None:
    assert run_ids(db, "params.lr IS NULL") == ["r4", "r5"]


def test_and_binds_tighter_than_or(db: Engine) -> None:
    text = "params.model = 'xgb' or metrics.acc > 0.8 and tags.team = 'vision'"
    assert run_ids(db, text) == ["r3", "r2"]


def test_parentheses_group_an_or(db: Engine) -> None:
    text = "(params.model = 'xgb' or metrics.acc > 0.8) and tags.team = 'vision'"
    assert run_ids(db, text) == ["r2"]


def test_status_in_matches_listed_statuses(db: Engine) -> None:
    assert run_ids(db, "attributes.status IN ('FAILED', 'RUNNING')") == ["r4", "r3"]


def test_run_id_comparisons(db: Engine) -> None:
    assert run_ids(db, "attributes.run_id = 'r2'") == ["r2"]
    assert run_ids(db, "run_id NOT IN ('r1', 'r2')") == ["r4", "r5", "r3"]


def test_start_time_and_created_alias_compare_numbers(db: Engine) -> None:
    assert run_ids(db, "attributes.start_time >= 3000") == ["r4", "r5", "r3"]
    assert run_ids(db, "created < 2000") == ["r1"]


def test_end_time_comparison_skips_unfinished_runs(db: Engine) -> None:
    assert run_ids(db, "attributes.end_time > 0") == ["r5", "r2", "r1"]


def test_double_quoted_tag_key_with_dots(db: Engine) -> None:
    assert run_ids(db, "tags.\"mlflow.user\" = 'bob'") == ["r2"]


def test_dataset_name_digest_and_context(db: Engine) -> None:
    assert run_ids(db, "datasets.name = 'mnist'") == ["r3", "r1"]
    assert run_ids(db, "datasets.digest IN ('d2', 'd3')") == ["r3", "r2"]
    assert run_ids(db, "datasets.context = 'training'") == ["r1"]


def test_deleted_only_view_returns_only_deleted_runs(db: Engine) -> None:
    assert run_ids(db, "metrics.acc > 0", view="DELETED_ONLY") == ["r6"]


def test_all_view_returns_active_and_deleted_runs(db: Engine) -> None:
    assert run_ids(db, view="ALL") == ["r6", "r4", "r5", "r3", "r2", "r1"]


def test_experiment_ids_restrict_the_runs(db: Engine) -> None:
    assert run_ids(db, "metrics.acc > 0.9", experiment_ids=[1, 2]) == ["r7"]
    assert run_ids(db, experiment_ids=[]) == []


def test_invalid_view_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        run_search_query(None, [], experiment_ids=[1], view="SOME")  # type: ignore[arg-type]


# ---- run ordering


def test_metric_ascending_puts_nan_then_missing_last(db: Engine) -> None:
    assert run_ids(db, order_by=["metrics.acc ASC"]) == ["r1", "r4", "r2", "r3", "r5"]


def test_metric_descending_puts_nan_then_missing_last(db: Engine) -> None:
    assert run_ids(db, order_by=["metrics.acc DESC"]) == ["r2", "r4", "r1", "r3", "r5"]


def test_param_order_puts_missing_last_in_both_directions(db: Engine) -> None:
    assert run_ids(db, order_by=["params.lr DESC"]) == ["r3", "r1", "r2", "r4", "r5"]
    assert run_ids(db, order_by=["params.lr"]) == ["r2", "r3", "r1", "r4", "r5"]


def test_tag_order_compares_bytes_so_uppercase_sorts_first(db: Engine) -> None:
    assert run_ids(db, order_by=["tags.team ASC"]) == ["r1", "r4", "r2", "r5", "r3"]


def test_run_name_order_compares_bytes(db: Engine) -> None:
    assert run_ids(db, order_by=["attributes.run_name"]) == ["r1", "r2", "r4", "r3", "r5"]


def test_end_time_order_puts_unfinished_runs_last_in_both_directions(db: Engine) -> None:
    assert run_ids(db, order_by=["end_time ASC"]) == ["r1", "r2", "r5", "r4", "r3"]
    assert run_ids(db, order_by=["end_time DESC"]) == ["r5", "r2", "r1", "r4", "r3"]


def test_start_time_ascending_replaces_the_default_order(db: Engine) -> None:
    assert run_ids(db, order_by=["attributes.start_time ASC"]) == ["r1", "r2", "r3", "r4", "r5"]


def test_second_order_term_breaks_ties_of_the_first(db: Engine) -> None:
    order = ["metrics.`val.loss` DESC", "metrics.acc"]
    assert run_ids(db, order_by=order) == ["r1", "r4", "r2", "r3", "r5"]


def test_filter_and_order_on_the_same_metric(db: Engine) -> None:
    assert run_ids(db, "metrics.acc > 0.6", ["metrics.acc DESC"]) == ["r2", "r4"]


def test_pages_of_the_query_concatenate_to_the_full_result(db: Engine) -> None:
    query = run_search_query(None, parse_order_by(["params.model"]), experiment_ids=[1], view="ALL")
    with db.connect() as conn:
        full = list(conn.scalars(query))
        pages = [list(conn.scalars(query.limit(2).offset(at))) for at in (0, 2, 4)]
    assert [run for page in pages for run in page] == full
    assert full == ["r2", "r6", "r1", "r4", "r3", "r5"]


# ---- experiments


def test_experiments_default_order_is_creation_time_desc_then_id(db: Engine) -> None:
    assert experiment_ids(db) == [2, 4, 1, 0]


def test_experiment_name_like_is_case_sensitive_and_ilike_is_not(db: Engine) -> None:
    assert experiment_ids(db, "name LIKE '%vision%'") == [4]
    assert experiment_ids(db, "name ILIKE '%vision%'") == [4, 1]


def test_experiment_name_equality_with_attribute_prefix(db: Engine) -> None:
    assert experiment_ids(db, "attribute.name = 'nlp-models'") == [2]


def test_experiment_tag_equality_and_absence(db: Engine) -> None:
    assert experiment_ids(db, "tags.team = 'vision'") == [1]
    assert experiment_ids(db, "tags.team IS NULL") == [4, 0]


def test_experiment_times_compare_numbers(db: Engine) -> None:
    assert experiment_ids(db, "creation_time > 100") == [2, 4]
    assert experiment_ids(db, "last_update_time <= 500") == [2, 4, 0]


def test_experiment_id_in_list(db: Engine) -> None:
    assert experiment_ids(db, "experiment_id IN ('1', '4')") == [4, 1]


def test_experiment_views(db: Engine) -> None:
    assert experiment_ids(db, view="DELETED_ONLY") == [3]
    assert experiment_ids(db, view="ALL") == [2, 4, 1, 3, 0]


def test_experiment_name_order_compares_bytes(db: Engine) -> None:
    assert experiment_ids(db, order_by=["name"]) == [0, 1, 2, 4]


def test_explicit_experiment_order_breaks_ties_by_id_descending_like_mlflow(db: Engine) -> None:
    assert experiment_ids(db, order_by=["creation_time ASC"]) == [0, 1, 4, 2]
