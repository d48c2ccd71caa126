"""Every list is paginated the same way: limit/offset in, total and next_offset out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from mlops_kit.bounds import MAX_OFFSET

MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (1-{MAX_LIMIT})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"items to skip (0-{MAX_OFFSET})")]


def page_fields(total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }
