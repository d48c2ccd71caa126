"""What the tracking client's parts share: the service's paths, batching and paging."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

from mlops_client.tracking_models import TokenPage

T = TypeVar("T")

# the service's per-request batch limits; larger batches are sent in several requests
METRICS_PER_REQUEST = 1000
PARAMS_PER_REQUEST = 100
HISTORY_FALLBACK_LIMIT = 1_000_000


def quote_part(part: str) -> str:
    return quote(part, safe="")


def experiment_path(experiment_id: str) -> str:
    return f"/api/experiments/{quote_part(experiment_id)}"


def run_path(experiment_id: str, run_id: str) -> str:
    return f"{experiment_path(experiment_id)}/runs/{quote_part(run_id)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def filter_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def follow(fetch: Callable[[str | None], TokenPage[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return
