"""Reading uploads off the wire: raw streamed bodies and multipart forms, spooled and hashed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from mlops_kit.errors import InvalidJson, parse_json
from mlops_kit.limits import upload_limit
from mlops_kit.storage import ArtifactStore, SpooledFile
from starlette.datastructures import UploadFile

from model_registry.artifacts.service import check_path

MAX_FILES = 10_000


async def read_body(request: Request, store: ArtifactStore, expected_sha256: str | None) -> SpooledFile:
    return await store.spool(
        request.stream(), max_bytes=upload_limit(request), expected_sha256=expected_sha256
    )


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1024 * 1024):
        yield chunk


async def read_multipart(
    request: Request,
    store: ArtifactStore,
) -> tuple[dict[str, Any] | None, list[tuple[str, SpooledFile]]]:
    """`metadata` (JSON; None when absent) plus any number of files; each file's name is its path."""
    limit = upload_limit(request)
    form = await request.form(max_files=MAX_FILES, max_fields=100)
    spooled: list[tuple[str, SpooledFile]] = []
    try:
        field = form.get("metadata")
        raw = await field.read() if isinstance(field, UploadFile) else field
        metadata = parse_json(raw, "form field 'metadata'") if raw else None
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidJson("form field 'metadata' must be a JSON object")
        total = 0
        for _, value in form.multi_items():
            if not isinstance(value, UploadFile) or value is form.get("metadata"):
                continue
            path = check_path(value.filename or "model.bin")
            item = await store.spool(_chunks(value), max_bytes=limit - total)
            total += item.size
            spooled.append((path, item))
        return metadata, spooled
    except BaseException:
        for _, item in spooled:
            item.discard()
        raise
    finally:
        await form.close()
