"""Uploads live under `uploads/<uuid>/<name>` in the artifact store, beside (never over) the runs'
own artifacts; workers read them through `TaskContext.artifact_path(uri)` on any executor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from mlops_kit.storage import MAX_NAME_BYTES, ArtifactStore, SpooledFile

from pipeline_orchestrator.errors import ArtifactNotFound, EmptyUpload, InvalidArtifactUri
from pipeline_orchestrator.uploads.schemas import UploadRead
from pipeline_orchestrator.worker import artifacts

PREFIX = "uploads/"


def store_upload(store: ArtifactStore, name: str, spooled: SpooledFile) -> UploadRead:
    """Keep the spooled file as a new upload; its URI is new every time (an upload is never replaced)."""
    if spooled.size == 0:
        raise EmptyUpload("the upload is empty: send the file's bytes as the request body")
    key = artifacts.check_key(f"{PREFIX}{uuid.uuid4().hex}/{name}")
    store.put_file(key, spooled.path)
    return UploadRead(uri=artifacts.uri(key), name=name, size=spooled.size, sha256=spooled.sha256)


def open_artifact(store: ArtifactStore, uri: str) -> tuple[int, Iterator[bytes]]:
    """The size and bytes of any artifact of the store (an upload or a task's output)."""
    try:
        key = artifacts.resolve(uri)
    except artifacts.ArtifactError as exc:
        raise InvalidArtifactUri(str(exc), {"uri": uri[:200]}) from None
    if any(len(part.encode()) > MAX_NAME_BYTES for part in key.split("/")):
        raise InvalidArtifactUri(f"no artifact key has a part longer than {MAX_NAME_BYTES} bytes")
    size = store.size(key)
    if size is None:
        raise ArtifactNotFound(f"artifact {uri} does not exist", {"uri": uri})
    return size, store.open(key)
