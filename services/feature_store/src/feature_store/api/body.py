"""Reading an upload off the wire: a raw JSON/CSV/Parquet body or a multipart form's `file` part."""

from __future__ import annotations

from fastapi import Request
from mlops_kit.errors import PayloadTooLarge
from mlops_kit.limits import upload_limit
from starlette.datastructures import UploadFile

from feature_store.errors import InvalidRequest
from feature_store.offline.frames import Body, format_of


async def read_body(request: Request, asked_format: str | None) -> Body:
    """The body as (format, bytes): raw JSON/CSV/Parquet, or the `file` part of a multipart form.
    Bounded by max_upload_bytes (JSON, CSV and Parquet media types are also bounded by the
    service's JSON body limit; send large files as application/octet-stream or multipart)."""
    limit = upload_limit(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("the multipart form has no file part named 'file'")
        data = await upload.read()
        part_type = (upload.content_type or "").split(";")[0].strip().lower()
        fmt = format_of(
            "" if part_type == "application/octet-stream" else part_type, upload.filename, asked_format
        )
    else:
        if content_type == "application/octet-stream" and not asked_format:
            raise InvalidRequest("application/octet-stream needs ?format=csv or ?format=parquet")
        fmt = format_of(content_type, None, asked_format)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes", {"max_bytes": limit})
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > limit:
        raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes", {"max_bytes": limit})
    return Body(fmt, data)
