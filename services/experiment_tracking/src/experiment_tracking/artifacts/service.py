"""Run artifacts in the kit's artifact store, keyed as MLflow's artifact proxy lays them out:
`<experiment id>/<run id>/artifacts/<path>`."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import Any

from mlops_kit.storage import ArtifactStore

from experiment_tracking.errors import ArtifactNotFound, InvalidValue

PROXY_SCHEME = "mlflow-artifacts:"


MAX_PATH = 1024
# a file name (255 bytes on common file systems) less the local store's temporary-file suffix
MAX_SEGMENT_BYTES = 200


def check_path(path: str) -> str:
    clean = path.strip("/")
    parts = clean.split("/")
    if (
        not clean
        or len(clean) > MAX_PATH
        or any(p in ("", ".", "..") or len(p.encode()) > MAX_SEGMENT_BYTES for p in parts)
        or "\\" in clean
        or "\x00" in clean
    ):
        raise InvalidValue(
            f"invalid artifact path {path[:80]!r}: relative, '/'-separated, at most {MAX_PATH} characters "
            f"in parts of at most {MAX_SEGMENT_BYTES} bytes, without '.', '..' or empty parts",
            {"path": path[:MAX_PATH]},
        )
    return clean


def run_root(artifact_uri: str) -> str:
    """The store prefix of a run whose artifacts the service holds."""
    if not artifact_uri.startswith(PROXY_SCHEME):
        raise InvalidValue(
            f"this run's artifacts live at {artifact_uri!r}, outside the service; use that store directly",
            {"artifact_uri": artifact_uri},
        )
    return artifact_uri[len(PROXY_SCHEME) :].strip("/")


def join(root: str, path: str | None) -> str:
    return f"{root}/{check_path(path)}" if path and path.strip("/") else root


def listing(store: ArtifactStore, prefix: str) -> list[dict[str, Any]]:
    files = []
    for entry in store.list_dir(prefix):
        item: dict[str, Any] = {"path": entry.path, "is_dir": entry.is_dir}
        if entry.size is not None:
            item["file_size"] = entry.size
        files.append(item)
    return files


def open_file(store: ArtifactStore, key: str) -> tuple[int, str, Iterator[bytes]]:
    size = store.size(key)
    if size is None:
        raise ArtifactNotFound(f"no artifact at {key!r}", {"path": key})
    media = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return size, media, store.open(key)
