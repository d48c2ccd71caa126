"""Reference data off the wire: a raw body or a multipart `file` part, as JSON bytes (bounded by the
JSON body limit) or a spooled file (CSV, Parquet: bounded by the upload limit, never whole in
memory), then the profile built from it batch by batch."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from fastapi.concurrency import run_in_threadpool
from mlops_kit.errors import PayloadTooLarge
from mlops_kit.limits import upload_limit
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from model_registry.errors import InvalidReferenceData
from model_registry.monitoring import ingest
from model_registry.monitoring.columns import Kind
from model_registry.monitoring.profile import Profile

FORMATS = ("json", "csv", "parquet")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
CSV_TYPES = ("text/csv", "application/csv")
JSON_TYPES = ("application/json", "")
MAGIC = b"PAR1"
SPOOL_MEMORY = 8 * 1024**2  # a spooled body moves to a temporary file past this
WRITE_BYTES = 1024**2
MAX_FORM_FIELDS = 1000


@dataclass
class Data:
    """Reference data read off the wire: JSON bytes, or a spooled file of CSV or Parquet."""

    format: str
    raw: bytes = b""
    file: IO[bytes] | None = None
    types: list[str] = field(default_factory=list)  # `column:kind` given beside a multipart file

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def _format(content_type: str, filename: str, asked: str | None) -> str | None:
    if asked:
        return asked
    name = filename.lower()
    if content_type in PARQUET_TYPES or name.endswith((".parquet", ".pq")):
        return "parquet"
    if content_type in CSV_TYPES or name.endswith(".csv"):
        return "csv"
    if content_type in JSON_TYPES or content_type.endswith("+json") or name.endswith(".json"):
        return "json"
    return None


def _unsupported(content_type: str) -> InvalidReferenceData:
    return InvalidReferenceData(
        f"content type {content_type!r} is not supported; send application/json, text/csv, "
        "application/vnd.apache.parquet, multipart/form-data with a `file` part, or "
        "application/octet-stream with ?format=json|csv|parquet",
        {"content_type": content_type[:100]},
    )


async def _counted(chunks: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes", {"max_bytes": limit})
        yield chunk


async def spool(chunks: AsyncIterator[bytes], limit: int) -> IO[bytes]:
    """The stream in a temporary file (in memory up to SPOOL_MEMORY), at most `limit` bytes."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - returned open
    buffer = bytearray()
    try:
        async for chunk in _counted(chunks, limit):
            buffer += chunk
            if len(buffer) >= WRITE_BYTES:
                await run_in_threadpool(file.write, bytes(buffer))
                buffer.clear()
        await run_in_threadpool(file.write, bytes(buffer))
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def _starts_with_magic(file: IO[bytes]) -> bool:
    head = file.read(4)
    file.seek(0)
    return head == MAGIC


async def _json_bytes(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    return b"".join([chunk async for chunk in _counted(chunks, limit)])


async def from_stream(
    chunks: AsyncIterator[bytes], fmt: str | None, limits: tuple[int, int], octet: bool = False
) -> Data:
    """A body of a known format (or, as octet-stream, Parquet recognised by its magic bytes);
    `limits` = (JSON limit, upload limit)."""
    if fmt == "json":
        return Data("json", raw=await _json_bytes(chunks, min(limits)))
    file = await spool(chunks, limits[1])
    if fmt is None and octet and _starts_with_magic(file):
        fmt = "parquet"
    if fmt is None:
        file.close()
        raise InvalidReferenceData(
            "the format of this body is unknown: give ?format=json|csv|parquet", {"formats": list(FORMATS)}
        )
    return Data(fmt, file=file)


async def _form_file(request: Request, asked: str | None, limits: tuple[int, int]) -> Data:
    """The form's `file` part, kept in the spooled file the multipart parser wrote it to."""
    parser = MultiPartParser(
        request.headers, _counted(request.stream(), limits[1]), max_files=1, max_fields=MAX_FORM_FIELDS
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidReferenceData(f"the multipart body is malformed: {exc.message}") from None
    upload = form.get("file")
    try:
        if not isinstance(upload, UploadFile):
            raise InvalidReferenceData("the multipart form has no file part named 'file'")
        data = await run_in_threadpool(_part, upload, asked, limits[0])
    except BaseException:
        await form.close()
        raise
    data.types = [value for key, value in form.multi_items() if key == "types" and isinstance(value, str)]
    return data


def _part(upload: UploadFile, asked: str | None, json_limit: int) -> Data:
    part_type = media_type(upload.content_type)
    octet = part_type == "application/octet-stream"
    fmt = _format("" if octet else part_type, upload.filename or "", asked)
    upload.file.seek(0)
    if fmt is None and octet and _starts_with_magic(upload.file):
        fmt = "parquet"
    if fmt is None:
        raise _unsupported(part_type)
    if fmt != "json":
        return Data(fmt, file=upload.file)
    if (upload.size or 0) > json_limit:
        raise PayloadTooLarge(
            f"a JSON file part is limited to {json_limit} bytes; send large data as CSV or Parquet",
            {"max_bytes": json_limit},
        )
    raw = upload.file.read()
    upload.file.close()
    return Data("json", raw=raw)


async def read(request: Request, asked: str | None) -> Data:
    """The request's reference data: the raw body, or a multipart form's `file` part (its format by
    `?format=`, else the part's content type or file name) and its `types` fields."""
    limits = (request.app.state.settings.max_json_bytes, upload_limit(request))
    content_type = media_type(request.headers.get("content-type"))
    if content_type == "multipart/form-data":
        return await _form_file(request, asked, limits)
    octet = content_type == "application/octet-stream"
    fmt = _format(content_type, "", asked)
    if fmt is None and not octet:
        raise _unsupported(content_type)
    return await from_stream(request.stream(), fmt, limits, octet=octet)


def profile(data: Data, types: dict[str, Kind], exclude: frozenset[str] = frozenset()) -> tuple[Profile, int]:
    """The profile of the data, batch by batch (JSON records whole: they are bounded); runs in a
    worker thread."""
    if data.format == "json":
        return ingest.build(*ingest.json_columns(ingest.load_json(data.raw), types, exclude))
    assert data.file is not None
    # pyarrow (and the pandas it pulls in) on first use: ~2 s off every service start-up
    from model_registry.monitoring import columnar

    if data.format == "csv":
        return columnar.profile_csv(data.file, types, exclude)
    return columnar.profile_parquet(data.file, types, exclude)
