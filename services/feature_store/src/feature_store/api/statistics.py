"""`GET /api/feature-sets/{name}/statistics`: per-feature statistics of one schema version."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from mlops_kit.bounds import INT64_SCHEMA_MAX, PathStr
from mlops_kit.deps import SessionDep

from feature_store.api.schemas import StatisticsRead
from feature_store.deps import ViewsDep
from feature_store.stats import read_statistics

router = APIRouter(tags=["statistics"])


@router.get("/api/feature-sets/{name}/statistics", response_model=StatisticsRead)
def feature_statistics(
    name: PathStr,
    views: ViewsDep,
    session: SessionDep,
    version: Annotated[
        int | None, Query(ge=1, le=INT64_SCHEMA_MAX, description="schema version (default: the latest)")
    ] = None,
) -> dict[str, Any]:
    """Of every row ingested or pushed under that version: per feature count, nulls, and for
    numbers mean, std (ddof=1), min, max, quantiles p5..p95 and a 10-bin histogram (exact up to
    1024 values, from a uniform sample beyond), for strings and bools the top categories."""
    return read_statistics(session, views.get(session, name), version)
