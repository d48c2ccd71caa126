"""A reference profile's input, whatever its form: the request's body (JSON, CSV, Parquet; raw
or multipart) or, for a JSON `{"source": ...}`, the data fetched from the peer it names. Bodies
and peer answers are read on the event loop; parsing and the profile run in worker threads."""

from __future__ import annotations

from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.requests import Request

from model_registry.errors import InvalidReferenceData
from model_registry.monitoring import ingest, sources, upload
from model_registry.monitoring.columns import Kind
from model_registry.monitoring.profile import Profile


def _from_json(raw: bytes, types: list[str]) -> tuple[Any, dict[str, Kind]]:
    """The parsed body and the declared types; a `{"source": ...}` body comes back validated."""
    data = ingest.load_json(raw)
    declared = ingest.parse_types(types)
    if isinstance(data, dict) and "source" in data:
        try:
            return sources.ReferenceFromSource.model_validate(data), declared
        except ValidationError as exc:
            problems = [{"at": list(e["loc"]), "problem": e["msg"]} for e in exc.errors()[:20]]
            raise InvalidReferenceData("the reference source is invalid", {"errors": problems}) from None
    return data, declared


def _records(body: Any, declared: dict[str, Kind]) -> tuple[Profile, int]:
    return ingest.build(*ingest.json_columns(body, declared))


async def _fetched(
    request: Request, spec: sources.ReferenceFromSource, declared: dict[str, Kind]
) -> tuple[Profile, int]:
    data = await sources.fetch(request, spec)
    try:
        return await run_in_threadpool(upload.profile, data, declared | spec.types, spec.excluded())
    finally:
        data.close()


async def profile_of(request: Request, types: list[str], fmt: str | None) -> tuple[Profile, int]:
    """The profile and its row count; `types` are `column:kind` query values."""
    data = await upload.read(request, fmt)
    try:
        if data.format != "json":
            declared = ingest.parse_types(types + data.types)
            return await run_in_threadpool(upload.profile, data, declared, frozenset())
        body, declared = await run_in_threadpool(_from_json, data.raw, types + data.types)
    finally:
        data.close()
    if isinstance(body, sources.ReferenceFromSource):
        return await _fetched(request, body, declared)
    return await run_in_threadpool(_records, body, declared)
