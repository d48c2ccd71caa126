"""Every list is paginated the same way: limit/offset in, total and next_offset out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (1-1000)")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]


def page_fields(total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }
