"""Parsed searches as SQLAlchemy selects that run inside the database (SQLite and PostgreSQL alike).

Conditions on params, tags, metrics and datasets are subqueries on the child table (see `_has`);
metrics only ever read `latest_metrics`, and a NaN metric never satisfies a comparison. Ordering
by a metric, param or tag outer-joins one aliased row per order term.

Orderings follow MLflow's SQL store: a value that is present sorts before a NaN metric, which
sorts before a missing one, in both directions. Strings sort by their bytes on both backends
(PostgreSQL's "C" collation is SQLite's default), so a page boundary is the same everywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Literal

from mlops_kit.errors import BadRequest
from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    case,
    false,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from experiment_tracking.search.filter import And, Comparison, Expr, Op, Or, OrderTerm, Value
from experiment_tracking.tables import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    Param,
    Run,
    RunDataset,
    RunTag,
)

ViewType = Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]
_STAGES: dict[str, tuple[str, ...]] = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "deleted"),
}
_DATASET_CONTEXT_TAG = "mlflow.data.context"
Column = SQLColumnExpression[Any]


class _PerDialect(ColumnElement[Any]):
    """One expression written one way on SQLite and another elsewhere, so that a single query
    object serves both backends."""

    inherit_cache = True
    _traverse_internals = [
        ("elsewhere", InternalTraversal.dp_clauseelement),
        ("on_sqlite", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, elsewhere: ColumnElement[Any], on_sqlite: ColumnElement[Any]) -> None:
        self.elsewhere = elsewhere
        self.on_sqlite = on_sqlite
        self.type = elsewhere.type
        # a condition stays a condition: SQLite would otherwise get `... = 1` appended
        self._is_implicitly_boolean = elsewhere._is_implicitly_boolean


@compiles(_PerDialect)
def _compile_elsewhere(element: _PerDialect, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.elsewhere, **kw)


@compiles(_PerDialect, "sqlite")
def _compile_on_sqlite(element: _PerDialect, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.on_sqlite, **kw)


# ---- comparisons


def _like(column: SQLColumnExpression[str], pattern: str) -> ColumnElement[bool]:
    # SQLite's LIKE ignores case and PRAGMA case_sensitive_like is connection-wide; instr/substr
    # checks cannot place `_` and `%`. GLOB is its case-sensitive matcher: same pattern, translated
    return _PerDialect(
        column.like(pattern, escape="\\"), column.op("GLOB", is_comparison=True)(_like_to_glob(pattern))
    )


def _like_to_glob(pattern: str) -> str:
    out, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(_glob_literal(next(chars)))  # the parser refuses a trailing escape
        else:
            out.append({"%": "*", "_": "?"}.get(char) or _glob_literal(char))
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


_COMPARE: dict[Op, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "LIKE": _like,
    "ILIKE": lambda column, pattern: column.ilike(pattern, escape="\\"),
    "IN": lambda column, values: column.in_(values),
    "NOT IN": lambda column, values: column.not_in(values),
}


def _match(column: Column, op: Op, value: Value) -> ColumnElement[bool]:
    return _COMPARE[op](column, value)


def _condition(expr: Expr, compare: Callable[[Comparison], ColumnElement[bool]]) -> ColumnElement[bool]:
    if isinstance(expr, And):
        return and_(*(_condition(term, compare) for term in expr.terms))
    if isinstance(expr, Or):
        return or_(*(_condition(term, compare) for term in expr.terms))
    return compare(expr)


def _has(parent: Column, child: Column, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """Parents with a matching child row. SQLite probes only the searched parents' rows by
    primary key (EXISTS); PostgreSQL gets IN, because it costs EXISTS under an OR per row, and
    the inflated estimate can trip JIT compilation that costs more than the query."""
    matching = select(child).where(*conditions)
    return _PerDialect(parent.in_(matching), matching.where(child == parent).exists())


def _keyed(
    parent: Column, child: Column, key: SQLColumnExpression[str], value: SQLColumnExpression[str]
) -> Callable[[Comparison], ColumnElement[bool]]:
    """Conditions on a key-value table (params, tags): IS NULL means the key is absent."""

    def compare(c: Comparison) -> ColumnElement[bool]:
        if c.op == "IS NULL":
            return ~_has(parent, child, key == c.key)
        if c.op == "IS NOT NULL":
            return _has(parent, child, key == c.key)
        return _has(parent, child, key == c.key, _match(value, c.op, c.value))

    return compare


# ---- runs

_RUN_COLUMNS: dict[str, Column] = {
    "run_id": Run.id,
    "run_name": Run.name,
    "status": Run.status,
    "user_id": Run.user_id,
    "artifact_uri": Run.artifact_uri,
    "lifecycle_stage": Run.lifecycle_stage,
    "start_time": Run.start_time,
    "end_time": Run.end_time,
}
_RUN_STRING_ATTRIBUTES = {"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"}
_run_param = _keyed(Run.id, Param.run_id, Param.key, Param.value)
_run_tag = _keyed(Run.id, RunTag.run_id, RunTag.key, RunTag.value)


def _run_metric(c: Comparison) -> ColumnElement[bool]:
    value = _match(LatestMetric.value, c.op, c.value)
    return _has(Run.id, LatestMetric.run_id, LatestMetric.key == c.key, LatestMetric.is_nan == false(), value)


def _run_dataset(c: Comparison) -> ColumnElement[bool]:
    columns: dict[str, Column] = {
        "name": RunDataset.name,
        "digest": RunDataset.digest,
        "context": RunDataset.tags[_DATASET_CONTEXT_TAG].as_string(),
    }
    return _has(Run.id, RunDataset.run_id, _match(columns[c.key], c.op, c.value))


def _run_comparison(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "attribute":
        return _match(_RUN_COLUMNS[c.key], c.op, c.value)
    compare = {"metric": _run_metric, "param": _run_param, "tag": _run_tag, "dataset": _run_dataset}
    return compare[c.entity](c)


def _run_order_keys(query: Select[Any], term: OrderTerm) -> tuple[Select[Any], list[ColumnElement[Any]]]:
    """The ORDER BY keys of one term, and the query with the join they need."""
    if term.entity == "attribute":
        column = _RUN_COLUMNS[term.key]
        if term.key == "end_time":  # unfinished runs last, as MLflow
            return query, [case((column.is_(None), 1), else_=0), _direction(column, term.ascending)]
        if term.key in _RUN_STRING_ATTRIBUTES:
            column = _bytewise(column)
        return query, [_direction(column, term.ascending)]
    if term.entity == "metric":
        metric = aliased(LatestMetric)
        query = query.outerjoin(metric, and_(metric.run_id == Run.id, metric.key == term.key))
        rank = case((metric.run_id.is_(None), 2), (metric.is_nan, 1), else_=0)
        return query, [rank, _direction(metric.value, term.ascending)]
    entry = aliased(Param) if term.entity == "param" else aliased(RunTag)
    query = query.outerjoin(entry, and_(entry.run_id == Run.id, entry.key == term.key))
    return query, [
        case((entry.run_id.is_(None), 1), else_=0),
        _direction(_bytewise(entry.value), term.ascending),
    ]


def run_search_query(
    expr: Expr | None,
    order: Sequence[OrderTerm],
    *,
    experiment_ids: Sequence[int],
    view: ViewType = "ACTIVE_ONLY",
) -> Select[Any]:
    """`SELECT runs.id` of the matching runs in MLflow's order: the order terms, then
    `start_time DESC`, then the run id. The caller adds the limit and offset."""
    query = select(Run.id).where(
        Run.experiment_id.in_(experiment_ids), Run.lifecycle_stage.in_(_stages(view))
    )
    if expr is not None:
        query = query.where(_condition(expr, _run_comparison))
    keys: list[ColumnElement[Any]] = []
    for term in order:
        query, term_keys = _run_order_keys(query, term)
        keys += term_keys
    if not any((t.entity, t.key) == ("attribute", "start_time") for t in order):
        keys.append(Run.start_time.desc())
    return query.order_by(*keys, Run.id.asc())


# ---- experiments

_EXPERIMENT_COLUMNS: dict[str, Column] = {
    "experiment_id": Experiment.id,
    "name": Experiment.name,
    "creation_time": Experiment.creation_time,
    "last_update_time": Experiment.last_update_time,
}
_experiment_tag = _keyed(Experiment.id, ExperimentTag.experiment_id, ExperimentTag.key, ExperimentTag.value)
_DEFAULT_EXPERIMENT_ORDER = (
    OrderTerm("attribute", "creation_time", False),
    OrderTerm("attribute", "experiment_id"),
)


def _experiment_comparison(c: Comparison) -> ColumnElement[bool]:
    if c.entity == "tag":
        return _experiment_tag(c)
    return _match(_EXPERIMENT_COLUMNS[c.key], c.op, c.value)


def experiment_search_query(
    expr: Expr | None, order: Sequence[OrderTerm], view: ViewType = "ACTIVE_ONLY"
) -> Select[Any]:
    """`SELECT experiments.id` in MLflow's order: `creation_time DESC, experiment_id ASC` by
    default; after explicit order terms, `experiment_id DESC` breaks ties (as MLflow does)."""
    query = select(Experiment.id).where(Experiment.lifecycle_stage.in_(_stages(view)))
    if expr is not None:
        query = query.where(_condition(expr, _experiment_comparison))
    terms = list(order or _DEFAULT_EXPERIMENT_ORDER)
    if not any(t.key == "experiment_id" for t in terms):
        terms.append(OrderTerm("attribute", "experiment_id", ascending=False))
    keys = [_direction(_experiment_order_column(t.key), t.ascending) for t in terms]
    return query.order_by(*keys)


def _experiment_order_column(key: str) -> Column:
    column = _EXPERIMENT_COLUMNS[key]
    return _bytewise(column) if key == "name" else column


# ---- shared


def _stages(view: ViewType) -> tuple[str, ...]:
    if view not in _STAGES:
        raise BadRequest(f"invalid view type {view!r}; expected one of {', '.join(_STAGES)}")
    return _STAGES[view]


def _bytewise(column: Column) -> Column:
    return _PerDialect(column.collate("C"), column.collate("BINARY"))


def _direction(column: Column, ascending: bool) -> ColumnElement[Any]:
    return column.asc() if ascending else column.desc()
