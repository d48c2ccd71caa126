"""Artifact rules: immutable files per version, stored before metadata commits, removed on rollback."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from mlops_kit.audit import utcnow
from mlops_kit.db import after_commit, on_rollback
from mlops_kit.errors import RangeNotSatisfiable, ServiceUnavailable
from mlops_kit.storage import ArtifactStore, SpooledFile
from sqlalchemy.orm import Session

from model_registry.artifacts import repository as repo
from model_registry.artifacts.formats import detect
from model_registry.errors import ArtifactExists, ArtifactNotFound, InvalidPath, ModelVersionNotFound
from model_registry.models.service import lock_model
from model_registry.tables import Artifact, ModelVersion, RegisteredModel
from model_registry.types import default_format

PATH_RULE = (
    "a relative path of 1-512 characters in segments of at most 200 bytes, without '..', '\\' "
    "or empty segments"
)
_SEGMENT = re.compile(r"^[^/\\\x00-\x1f]+$")


def check_path(path: str) -> str:
    segments = path.split("/")
    if (
        not path
        or len(path) > 512
        or path.startswith("/")
        or any(s in ("", ".", "..") or not _SEGMENT.match(s) or len(s.encode()) > 200 for s in segments)
    ):
        raise InvalidPath(f"invalid artifact path {path[:80]!r}: {PATH_RULE}")
    return path


def storage_key(model: RegisteredModel, version: ModelVersion, path: str) -> str:
    # a token per upload: a racing upload of the same path that loses (and is rolled back)
    # must never delete the winner's object
    return f"models/{model.id}/versions/{version.id}/{uuid.uuid4().hex[:12]}/{path}"


def version_prefix(model: RegisteredModel, version: ModelVersion) -> str:
    return f"models/{model.id}/versions/{version.id}"


def model_prefix(model: RegisteredModel) -> str:
    return f"models/{model.id}"


def attach(
    session: Session,
    store: ArtifactStore,
    model: RegisteredModel,
    version: ModelVersion,
    files: list[tuple[str, SpooledFile]],
) -> None:
    """Store each spooled file, then record it; undone (objects deleted) if the commit fails.
    The objects are written before the model's lock is taken (no upload holds it), the rows
    and the version's checksum after, from what is committed by then."""
    _refuse_existing(session, model, version, [path for path, _ in files])
    detected = detect([(path, spooled.path) for path, spooled in files], version.framework)
    keys = [(path, spooled, _put(session, store, model, version, path, spooled)) for path, spooled in files]
    lock_model(session, model.name)
    if not repo.reload_version(session, version):
        raise ModelVersionNotFound(f"version {version.version!r} of {model.name!r} was deleted")
    existing = _refuse_existing(session, model, version, [path for path, _ in files])
    if not existing and version.format == default_format(version.framework):
        version.format = detected or version.format
    for path, spooled, key in keys:
        existing[path] = repo.add_artifact(
            session,
            Artifact(
                version_id=version.id,
                path=path,
                size_bytes=spooled.size,
                sha256=spooled.sha256,
                storage_key=key,
                created_at=utcnow(),
            ),
        )
    summarize(version, list(existing.values()))
    session.flush()


def _refuse_existing(
    session: Session, model: RegisteredModel, version: ModelVersion, paths: list[str]
) -> dict[str, Artifact]:
    existing = repo.by_path(session, version.id)
    seen: set[str] = set()
    for path in paths:
        if path in existing or path in seen:
            raise ArtifactExists(
                f"version {version.version!r} of {model.name!r} already has artifact {path!r}; "
                "artifacts are immutable, register a new version instead",
                {"path": path},
            )
        seen.add(path)
    return existing


def _put(
    session: Session,
    store: ArtifactStore,
    model: RegisteredModel,
    version: ModelVersion,
    path: str,
    spooled: SpooledFile,
) -> str:
    key = storage_key(model, version, path)
    try:
        store.put_file(key, spooled.path)
    except Exception as exc:
        raise ServiceUnavailable(f"artifact storage failed: {type(exc).__name__}: {exc}") from exc
    on_rollback(session, partial(store.delete, key))
    return key


def summarize(version: ModelVersion, artifacts: list[Artifact]) -> None:
    """A version's checksum: the file's sha256, or a sha256 over the sorted (path, sha256) list."""
    version.size_bytes = sum(a.size_bytes for a in artifacts)
    if len(artifacts) == 1:
        version.sha256 = artifacts[0].sha256
    else:
        manifest = "".join(f"{a.path}\t{a.sha256}\n" for a in sorted(artifacts, key=lambda a: a.path))
        version.sha256 = hashlib.sha256(manifest.encode()).hexdigest()
    version.status = "ready" if artifacts else "registered"
    version.updated_at = utcnow()


def list_artifacts(session: Session, version: ModelVersion) -> list[Artifact]:
    return repo.list_artifacts(session, version.id)


def pick(session: Session, version: ModelVersion, path: str | None) -> list[Artifact]:
    artifacts = list_artifacts(session, version)
    if path is not None:
        artifacts = [a for a in artifacts if a.path == path]
        if not artifacts:
            raise ArtifactNotFound(f"version {version.version!r} has no artifact {path!r}")
    elif not artifacts:
        raise ArtifactNotFound(f"version {version.version!r} has no artifacts uploaded yet")
    return artifacts


def remove_after_commit(session: Session, store: ArtifactStore, prefix: str) -> None:
    after_commit(session, lambda: store.delete_prefix(prefix))


@dataclass
class ByteRange:
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`; None means the whole file."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(
            f"unsupported Range {header!r}: use one range bytes=start-end", {"size": size}
        )
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"range {header!r} is outside the {size}-byte file", {"size": size})
    return ByteRange(start, end)


def zip_stream(store: ArtifactStore, artifacts: list[Artifact]) -> Iterator[bytes]:
    """Stream a ZIP of several files without holding any of them in memory."""
    import zipfile

    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)  # type: ignore[call-overload]
    with archive:
        for artifact in artifacts:
            info = zipfile.ZipInfo(artifact.path, date_time=artifact.created_at.timetuple()[:6])
            info.file_size = artifact.size_bytes
            with archive.open(info, "w", force_zip64=artifact.size_bytes > 2**31) as entry:
                for chunk in store.open(artifact.storage_key):
                    entry.write(chunk)
                    yield from sink.drain()
        yield from sink.drain()
    yield from sink.drain()


class _Sink:
    """A write-only, non-seekable file that hands out what was written so far."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        yield from parts
