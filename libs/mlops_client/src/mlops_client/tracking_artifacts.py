"""Tracking client, run artifacts: streamed uploads checked by sha256, listings and downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import httpx

from mlops_client._base import ServiceClient
from mlops_client.errors import ChecksumError, NotFoundError, ServiceUnavailableError, ValidationError
from mlops_client.registry import CHUNK, Progress
from mlops_client.tracking_common import run_path
from mlops_client.tracking_models import ArtifactFile, UploadedArtifact


def _shifted(progress: Progress, offset: int, total: int, done: int, _size: int | None) -> None:
    progress(offset + done, total)


class _FileBody:
    """A file as a request body that can be iterated again, so a retried PUT resends every byte."""

    def __init__(self, file: Path, progress: Progress | None):
        self.file, self.progress = file, progress
        self.size = file.stat().st_size
        self.sha256 = ""

    def __iter__(self) -> Iterator[bytes]:
        digest, sent = hashlib.sha256(), 0
        with open(self.file, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                sent += len(chunk)
                if self.progress:
                    self.progress(sent, self.size)
                yield chunk
        self.sha256 = digest.hexdigest()


class ArtifactsMixin(ServiceClient):
    # artifacts --------------------------------------------------------------------------------
    def upload_artifact(
        self,
        experiment_id: str,
        run_id: str,
        path: str | Path,
        *,
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> list[UploadedArtifact]:
        """Upload a file (streamed) or every file of a directory; sha256 is checked against the service.

        `artifact_path` is where a file lands (default: its name), or the folder a directory's
        files go under (default: the run's artifact root). Uploads are retried like other PUTs.
        """
        source = Path(path)
        if not source.is_dir():
            return [self._put_file(experiment_id, run_id, source, artifact_path or source.name, progress)]
        files = sorted(p for p in source.rglob("*") if p.is_file())
        if not files:
            raise ValidationError(0, "EMPTY_DIRECTORY", f"{source} has no files to upload")
        total, done, uploaded = sum(f.stat().st_size for f in files), 0, []
        for file in files:
            rel = file.relative_to(source).as_posix()
            target = f"{artifact_path.strip('/')}/{rel}" if artifact_path else rel
            shifted = partial(_shifted, progress, done, total) if progress else None
            uploaded.append(self._put_file(experiment_id, run_id, file, target, shifted))
            done += file.stat().st_size
        return uploaded

    def _put_file(
        self, experiment_id: str, run_id: str, file: Path, target: str, progress: Progress | None
    ) -> UploadedArtifact:
        body = _FileBody(file, progress)
        headers = {"Content-Length": str(body.size), "Content-Type": "application/octet-stream"}
        url = f"{run_path(experiment_id, run_id)}/artifacts/{quote(target.strip('/'))}"
        stored = UploadedArtifact.model_validate(
            self.request("PUT", url, content=body, headers=headers).json()
        )
        if stored.sha256 != body.sha256:
            raise ChecksumError(0, "CHECKSUM_MISMATCH", f"{file} arrived corrupt as {target}; retry")
        return stored

    def list_artifacts(
        self, experiment_id: str, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> list[ArtifactFile]:
        """The files and folders directly under `path`, or with `recursive` every file below it."""
        base = (path or "").strip("/")
        query = {"path": base} if base else None
        data = self.request("GET", f"{run_path(experiment_id, run_id)}/artifacts", params=query).json()
        entries = [
            ArtifactFile.model_validate({**f, "path": f"{base}/{f['path']}" if base else f["path"]})
            for f in data["files"]
        ]
        if not recursive:
            return entries
        found: list[ArtifactFile] = []
        for entry in entries:
            if entry.is_dir:
                found.extend(self.list_artifacts(experiment_id, run_id, entry.path, recursive=True))
            else:
                found.append(entry)
        return found

    def download_artifact(
        self,
        experiment_id: str,
        run_id: str,
        dest: str | Path,
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream one artifact file, or a folder (default: all of the run's artifacts), to `dest`.

        A file goes to `dest`, or into it when `dest` is a directory; a folder's files are written
        under the directory `dest` keeping their paths relative to the folder.
        """
        base = (path or "").strip("/")
        target = Path(dest)
        if base and not self._is_dir(experiment_id, run_id, base):
            if target.is_dir():
                target = target / PurePosixPath(base).name
            self._get_file(experiment_id, run_id, base, target, progress)
            return target
        files = self.list_artifacts(experiment_id, run_id, base or None, recursive=True)
        total, done = sum(f.file_size or 0 for f in files), 0
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            rel = PurePosixPath(file.path).relative_to(base) if base else PurePosixPath(file.path)
            if ".." in rel.parts or rel.is_absolute():
                raise ValidationError(0, "INVALID_ARTIFACT_PATH", f"refusing to write {file.path!r}")
            shifted = partial(_shifted, progress, done, total) if progress else None
            self._get_file(experiment_id, run_id, file.path, target.joinpath(*rel.parts), shifted)
            done += file.file_size or 0
        return target

    def _is_dir(self, experiment_id: str, run_id: str, path: str) -> bool:
        # asked of the parent's listing: the service can't answer a GET on a folder's path
        parent = PurePosixPath(path).parent.as_posix()
        for entry in self.list_artifacts(experiment_id, run_id, None if parent == "." else parent):
            if entry.path == path:
                return entry.is_dir
        raise NotFoundError(
            404, "ARTIFACT_NOT_FOUND", f"run {run_id} has no artifact {path!r}", {"path": path}
        )

    def _get_file(
        self, experiment_id: str, run_id: str, path: str, target: Path, progress: Progress | None
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_file = target.with_name(target.name + ".part")
        url = f"{run_path(experiment_id, run_id)}/artifacts/{quote(path)}"
        try:
            with self.stream("GET", url) as response, open(partial_file, "wb") as fh:
                length = response.headers.get("content-length")
                total, done = (int(length) if length else None), 0
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except httpx.HTTPError as exc:
            partial_file.unlink(missing_ok=True)
            raise ServiceUnavailableError(
                0, "DOWNLOAD_INTERRUPTED", f"download of {path} broke off: {exc!r}"
            ) from exc
        except BaseException:
            partial_file.unlink(missing_ok=True)
            raise
        partial_file.replace(target)
