from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from mlops_kit.bounds import PathLong
from mlops_kit.deps import SessionDep, StoreDep
from mlops_kit.errors import ErrorBody
from mlops_kit.openapi import file_responses
from mlops_kit.storage import ArtifactStore, SpooledFile
from sqlalchemy.orm import Session

from model_registry.artifacts import service
from model_registry.artifacts.upload import MAX_FILES, read_body, read_multipart
from model_registry.deps import ModelDep, NamePath, VersionDep, VersionPath, resolve_version
from model_registry.models import service as models
from model_registry.models.schemas import ArtifactRead, ModelVersionRead
from model_registry.tables import ModelVersion, RegisteredModel

router = APIRouter(prefix="/api/models/{name}/versions/{version}", tags=["artifacts"])
OCTETS = "application/octet-stream"
RANGE_ERROR: dict[int | str, dict[str, Any]] = {
    416: {"model": ErrorBody, "description": "Range not satisfiable"}
}

Sha256Header = Annotated[
    str | None,
    Header(
        alias="x-checksum-sha256",
        max_length=64,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="sha256 the uploaded bytes must match",
    ),
]


def _find(request: Request, name: str, version: str) -> None:
    """404 before any byte is read, using a read-only session (no write lock held during upload)."""
    session = request.app.state.db.session(write=False)
    try:
        resolve_version(session, name, version)
    finally:
        session.close()


def _attach(
    session: Session, store: ArtifactStore, name: str, version: str, files: list[tuple[str, SpooledFile]]
) -> ModelVersionRead:
    model, found = resolve_version(session, name, version)
    service.attach(session, store, model, found, files)
    return models.version_read(session, model, found)


@router.put(
    "/artifacts/{path:path}",
    response_model=ModelVersionRead,
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
    summary="Upload one artifact file as the raw request body (streamed)",
)
async def put_artifact(
    name: NamePath,
    version: VersionPath,
    path: PathLong,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    sha256: Sha256Header = None,
    sha256_query: Annotated[
        str | None, Query(alias="sha256", max_length=64, pattern=r"^[0-9a-fA-F]{64}$")
    ] = None,
) -> ModelVersionRead:
    service.check_path(path)
    await run_in_threadpool(_find, request, name, version)
    spooled = await read_body(request, store, sha256 or sha256_query)
    try:
        return await run_in_threadpool(_attach, session, store, name, version, [(path, spooled)])
    finally:
        spooled.discard()


@router.post(
    "/artifacts",
    response_model=ModelVersionRead,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "array",
                                "maxItems": MAX_FILES,
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                }
            }
        }
    },
    summary="Upload one or more files (a directory) as multipart form data",
)
async def post_artifacts(
    name: NamePath, version: VersionPath, request: Request, session: SessionDep, store: StoreDep
) -> ModelVersionRead:
    await run_in_threadpool(_find, request, name, version)
    _, files = await read_multipart(request, store)
    try:
        return await run_in_threadpool(_attach, session, store, name, version, files)
    finally:
        for _, spooled in files:
            spooled.discard()


@router.get("/artifacts", response_model=list[ArtifactRead], summary="List a version's files")
def list_artifacts(version: VersionDep, session: SessionDep) -> list[ArtifactRead]:
    return [
        ArtifactRead(path=a.path, size_bytes=a.size_bytes, sha256=a.sha256, created_at=a.created_at)
        for a in service.list_artifacts(session, version)
    ]


@dataclass
class _Download:
    """What a GET sends (and a HEAD describes): status, headers, and the body to stream."""

    status: int
    headers: dict[str, str]
    media_type: str
    body: Callable[[], Iterator[bytes]]

    def streamed(self) -> StreamingResponse:
        return StreamingResponse(
            self.body(), status_code=self.status, headers=self.headers, media_type=self.media_type
        )

    def described(self) -> Response:
        response = Response(status_code=self.status, headers=self.headers, media_type=self.media_type)
        if "Content-Length" not in self.headers:  # a streamed ZIP: its length is not known up front
            del response.headers["content-length"]
        return response


def _prepare(
    model: RegisteredModel,
    version: ModelVersion,
    session: Session,
    store: ArtifactStore,
    path: str | None,
    range_header: str | None,
) -> _Download:
    chosen = service.pick(session, version, path)
    if len(chosen) > 1:
        headers = {
            "Content-Disposition": _disposition(f"{model.name}-{version.version}.zip"),
            "X-Checksum-Sha256": version.sha256 or "",
        }
        return _Download(200, headers, "application/zip", partial(service.zip_stream, store, chosen))
    artifact = chosen[0]
    size = artifact.size_bytes
    span = service.parse_range(range_header, size)
    headers = {
        "Accept-Ranges": "bytes",
        "X-Checksum-Sha256": artifact.sha256,
        "ETag": f'"{artifact.sha256}"',
        "Content-Disposition": _disposition(artifact.path.rsplit("/", 1)[-1]),
    }
    if span is None:
        headers["Content-Length"] = str(size)
        return _Download(200, headers, OCTETS, partial(store.open, artifact.storage_key))
    headers["Content-Length"] = str(span.length)
    headers["Content-Range"] = f"bytes {span.start}-{span.end}/{size}"
    return _Download(206, headers, OCTETS, partial(store.open, artifact.storage_key, span.start, span.end))


OCTETS = "application/octet-stream"
PathQuery = Annotated[str | None, Query(max_length=1024, description="one file of a multi-file version")]
RangeHeader = Annotated[str | None, Header(alias="range", max_length=256)]
DOWNLOADED = {**file_responses(200, 206, media_types=(OCTETS, "application/zip")), **RANGE_ERROR}
DESCRIBED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the headers a GET would send (Content-Length, X-Checksum-Sha256), no body",
        "content": {OCTETS: {}, "application/zip": {}},
    },
    206: {"description": "the headers of the requested range, no body", "content": {OCTETS: {}}},
    **RANGE_ERROR,
}


@router.get(
    "/download",
    summary="Download the artifact (Range supported); several files as a ZIP",
    response_class=Response,
    responses=DOWNLOADED,
)
def download(
    model: ModelDep,
    version: VersionDep,
    session: SessionDep,
    store: StoreDep,
    path: PathQuery = None,
    range_header: RangeHeader = None,
) -> StreamingResponse:
    return _prepare(model, version, session, store, path, range_header).streamed()


@router.head(
    "/download",
    summary="The download's headers (size, checksum, ranges) without its body",
    responses=DESCRIBED,
)
def download_headers(
    model: ModelDep,
    version: VersionDep,
    session: SessionDep,
    store: StoreDep,
    path: PathQuery = None,
    range_header: RangeHeader = None,
) -> Response:
    return _prepare(model, version, session, store, path, range_header).described()


@router.get(
    "/artifacts/{path:path}",
    summary="Download one file of a version",
    response_class=Response,
    responses={**file_responses(200, 206), **RANGE_ERROR},
)
def download_file(
    model: ModelDep,
    version: VersionDep,
    path: PathLong,
    session: SessionDep,
    store: StoreDep,
    range_header: RangeHeader = None,
) -> StreamingResponse:
    return _prepare(model, version, session, store, path, range_header).streamed()


@router.head(
    "/artifacts/{path:path}",
    summary="One file's headers (size, checksum) without its body",
    responses=DESCRIBED,
)
def download_file_headers(
    model: ModelDep,
    version: VersionDep,
    path: PathLong,
    session: SessionDep,
    store: StoreDep,
    range_header: RangeHeader = None,
) -> Response:
    return _prepare(model, version, session, store, path, range_header).described()


def _disposition(filename: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(filename)}"
