"""Task artifacts in the platform artifact store, named by ``mlops-artifacts://<key>`` URIs.

The store is the one ``mlops_kit.storage.build_store`` makes from the orchestrator's settings
(a local directory by default, S3 in production) and is built once per process. Keys of an
attempt live under its ``artifact_prefix`` (``runs/<run_id>/<task>/<attempt>/``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_kit.storage import ArtifactStore

    from pipeline_orchestrator.settings import OrchestratorSettings

SCHEME = "mlops-artifacts://"

_lock = threading.Lock()
_stores: dict[tuple[Any, ...], ArtifactStore] = {}
_default_settings: OrchestratorSettings | None = None


class ArtifactError(ValueError):
    """A malformed artifact URI or name, or an artifact that does not exist."""


def default_settings() -> OrchestratorSettings:
    """``OrchestratorSettings()`` from the environment, read once per process."""
    global _default_settings
    if _default_settings is None:
        from pipeline_orchestrator.settings import OrchestratorSettings

        _default_settings = OrchestratorSettings()
    return _default_settings


def _store_key(settings: OrchestratorSettings) -> tuple[Any, ...]:
    if settings.artifact_store == "s3":
        return ("s3", settings.s3_endpoint, settings.s3_bucket, settings.s3_access_key, settings.s3_secure)
    return ("local", str(settings.resolved_artifact_dir))


def get_store(settings: OrchestratorSettings | None = None) -> ArtifactStore:
    """The artifact store for these settings (default: from the environment), cached per process."""
    settings = settings or default_settings()
    key = _store_key(settings)
    store = _stores.get(key)
    if store is None:
        from mlops_kit.storage import build_store

        with _lock:
            store = _stores.get(key) or build_store(settings)
            _stores[key] = store
    return store


def is_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def uri(key: str) -> str:
    return SCHEME + key


def resolve(artifact_uri: str) -> str:
    """The store key an ``mlops-artifacts://`` URI names."""
    if not is_uri(artifact_uri):
        raise ArtifactError(f"{artifact_uri!r} is not an artifact URI ({SCHEME}<key>)")
    return check_key(artifact_uri[len(SCHEME) :])


def check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or ".." in parts or "\\" in key:
        raise ArtifactError(f"invalid artifact key {key!r}: a relative '/'-separated path without '..'")
    return key


def attempt_prefix(run_id: str, task: str, attempt: int, prefix: str = "") -> str:
    """Where an attempt's artifacts go: the payload's prefix, or ``runs/<run>/<task>/<attempt>/``."""
    base = prefix or f"runs/{run_id}/{task}/{attempt}/"
    return base if base.endswith("/") else base + "/"


def local_file(store: ArtifactStore, key: str) -> Path | None:
    """The file behind `key` when the store is a local directory (None for remote stores)."""
    from mlops_kit.storage import LocalArtifactStore

    if not isinstance(store, LocalArtifactStore):
        return None
    path = (store.root / key).resolve()
    if not path.is_relative_to(store.root):
        raise ArtifactError(f"invalid artifact key {key!r}")
    return path


def put(store: ArtifactStore, key: str, source: Path, *, consume: bool = False) -> str:
    """Store the file `source` under `key` and return its URI.

    The S3 store deletes the file it uploads; unless `consume`, it is given a copy.
    """
    from mlops_kit.storage import LocalArtifactStore

    check_key(key)
    if not source.is_file():
        raise ArtifactError(f"{source} is not a file")
    if consume or isinstance(store, LocalArtifactStore):
        store.put_file(key, source)
        return uri(key)
    fd, tmp = tempfile.mkstemp(prefix="mlops-upload-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        store.put_file(key, Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return uri(key)


def put_bytes(store: ArtifactStore, key: str, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix="mlops-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        store.put_file(check_key(key), Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return uri(key)


def put_stream(store: ArtifactStore, key: str, stream: IO[Any]) -> str:
    fd, tmp = tempfile.mkstemp(prefix="mlops-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            while chunk := stream.read(1024 * 1024):
                fh.write(chunk.encode() if isinstance(chunk, str) else chunk)
        store.put_file(check_key(key), Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return uri(key)


def fetch(store: ArtifactStore, artifact_uri: str, directory: Path) -> Path:
    """A local path holding the artifact: the stored file itself for a local store (read it, do not
    change it), otherwise a download into `directory` keeping the key's file name."""
    key = resolve(artifact_uri)
    local = local_file(store, key)
    if local is not None:
        if not local.is_file():
            raise ArtifactError(f"artifact {artifact_uri} does not exist")
        return local
    if store.size(key) is None:
        raise ArtifactError(f"artifact {artifact_uri} does not exist")
    directory.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(dir=directory)) / PurePosixPath(key).name
    with open(target, "wb") as fh:
        for chunk in store.open(key):
            fh.write(chunk)
    return target


def iter_bytes(store: ArtifactStore, artifact_uri: str) -> Iterator[bytes]:
    key = resolve(artifact_uri)
    if store.size(key) is None:
        raise ArtifactError(f"artifact {artifact_uri} does not exist")
    return store.open(key)


def upload_dir(store: ArtifactStore, directory: Path, prefix: str) -> dict[str, str]:
    """Every file below `directory`, stored under `prefix`: relative name → URI."""
    found: dict[str, str] = {}
    if not directory.is_dir():
        return found
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        found[name] = put(store, prefix + name, path, consume=True)
    return found
