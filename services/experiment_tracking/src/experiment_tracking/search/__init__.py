"""MLflow's search language (filters and order_by) for runs and experiments, compiled to SQL."""

from experiment_tracking.search.compile import ViewType, experiment_search_query, run_search_query
from experiment_tracking.search.filter import (
    And,
    Comparison,
    Entity,
    Expr,
    InvalidFilter,
    Op,
    Or,
    OrderTerm,
    Scalar,
    Value,
    parse_experiment_filter,
    parse_order_by,
    parse_run_filter,
)

__all__ = [
    "And",
    "Comparison",
    "Entity",
    "Expr",
    "InvalidFilter",
    "Op",
    "Or",
    "OrderTerm",
    "Scalar",
    "Value",
    "ViewType",
    "experiment_search_query",
    "parse_experiment_filter",
    "parse_order_by",
    "parse_run_filter",
    "run_search_query",
]
