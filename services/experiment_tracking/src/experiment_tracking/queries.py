"""Query parameters of the native API, each with a documented maximum (the MLflow limits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from mlops_kit.bounds import NUL_FREE
from pydantic import Field

Filter = Annotated[str | None, Query(max_length=8000, pattern=NUL_FREE, description="a search filter")]
OrderBy = Annotated[
    list[Annotated[str, Field(max_length=500)]] | None,
    Query(max_length=100, description="e.g. `name ASC`, `metrics.f1 DESC`"),
]
View = Annotated[str, Query(max_length=12, pattern="^(ACTIVE_ONLY|DELETED_ONLY|ALL)$")]
PageToken = Annotated[str | None, Query(max_length=1000)]
# run ids, repeated or comma-separated: at most 100 ids of 32 characters
RunIds = Annotated[list[Annotated[str, Field(max_length=3300)]], Query(max_length=100)]
MetricKey = Annotated[str, Query(min_length=1, max_length=250, pattern=NUL_FREE)]
