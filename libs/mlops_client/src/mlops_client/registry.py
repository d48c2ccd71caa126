"""Client for the model registry (:8000)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from mlops_client._base import ServiceClient
from mlops_client.config import service_url
from mlops_client.errors import ChecksumError, ValidationError
from mlops_client.models import (
    Alias,
    AliasState,
    Artifact,
    Lineage,
    ModelVersion,
    Page,
    RegisteredModel,
    Transition,
)

Progress = Callable[[int, int | None], None]
"""Called as progress(bytes_done, bytes_total_or_None)."""

CHUNK = 1024 * 1024


def _q(part: str) -> str:
    return quote(part, safe="@")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _shifted(progress: Progress, offset: int, total: int, done: int, _size: int | None) -> None:
    progress(offset + done, total)


OCTETS = "application/octet-stream"


def _upload_list(source: Path, artifact_path: str | None) -> list[tuple[str, Path]]:
    """(artifact path, local file) for a file or every file under a directory."""
    if not source.is_dir():
        return [(artifact_path or source.name, source)]
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise ValidationError(0, "EMPTY_DIRECTORY", f"{source} has no files to upload")
    prefix = f"{artifact_path.rstrip('/')}/" if artifact_path else ""
    return [(prefix + f.relative_to(source).as_posix(), f) for f in files]


class _Meter:
    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.progress = total, 0, progress

    def add(self, count: int) -> None:
        self.done += count
        if self.progress and count:
            self.progress(self.done, self.total)


class _Counted:
    """A file handle that reports progress as httpx streams it (httpx sizes it by fileno)."""

    def __init__(self, handle: BinaryIO, meter: _Meter):
        self.handle, self.meter = handle, meter

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.meter.add(len(chunk))
        return chunk

    def fileno(self) -> int:
        return self.handle.fileno()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


class RegistryClient(ServiceClient):
    """Register, find, promote and download models.

    >>> with RegistryClient() as registry:            # MLOPS_MODEL_REGISTRY_URL, MLOPS_API_KEY
    ...     v = registry.register_model("fraud", framework="xgboost", metrics={"auc": 0.91},
    ...                                 path="model.json")   # one request: version and artifact
    ...     registry.set_alias("fraud", "champion", v.version)
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("model_registry"), **kwargs)

    # models and versions -------------------------------------------------------------------
    def register_model(
        self,
        name: str,
        *,
        version: str | None = None,
        framework: str = "other",
        format: str | None = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        description: str | None = None,
        signature: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        run_id: str | None = None,
        experiment_id: str | None = None,
        parent_version: str | None = None,
        path: str | Path | None = None,
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> ModelVersion:
        """Register a version (creating the model on its first). `version=None` takes the next integer.

        With `path` (a file, or a directory's files) the version and its artifact go in ONE
        multipart request, streamed with the checksum declared: if the upload fails nothing is
        registered. `format=None` lets the registry tell the format from the files."""
        body = {
            "name": name,
            "version": version,
            "framework": framework,
            "format": format,
            "metrics": metrics or {},
            "params": params or {},
            "tags": tags or [],
            "description": description,
            "signature": signature,
            "lineage": lineage or {},
            "run_id": run_id,
            "experiment_id": experiment_id,
            "parent_version": parent_version,
        }
        body = {k: v for k, v in body.items() if v is not None}
        if path is None:
            return ModelVersion.model_validate(self.request("POST", "/api/models", json=body).json())
        return self._register_with_files(body, Path(path), artifact_path, progress)

    def _register_with_files(
        self, body: dict[str, Any], source: Path, artifact_path: str | None, progress: Progress | None
    ) -> ModelVersion:
        files = _upload_list(source, artifact_path)
        if len(files) == 1:
            body = {**body, "sha256": file_sha256(files[0][1])}
        meter = _Meter(sum(f.stat().st_size for _, f in files), progress)
        with ExitStack() as stack:
            parts = [
                ("file", (target, _Counted(stack.enter_context(open(file, "rb")), meter), OCTETS))
                for target, file in files
            ]
            data = {"metadata": json.dumps(body)}
            # the file handles can't be replayed, so this POST is never retried blindly
            response = self.request("POST", "/api/models", data=data, files=parts, idempotent=False)
        return ModelVersion.model_validate(response.json())

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self.get_json(f"/api/models/{_q(name)}"))

    def list_models(
        self,
        *,
        name_prefix: str | None = None,
        tags: list[str] | None = None,
        framework: str | None = None,
        metrics: list[str] | None = None,
        order_by: str = "name",
        limit: int = 100,
        offset: int = 0,
    ) -> Page[RegisteredModel]:
        """One page of models; `metrics` are thresholds like ``["accuracy>0.9"]``."""
        data = self.get_json(
            "/api/models",
            name_prefix=name_prefix,
            tags=tags,
            framework=framework,
            metric=metrics,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )
        return Page[RegisteredModel].model_validate(data)

    def iter_models(self, **filters: Any) -> Iterator[RegisteredModel]:
        """Every model matching the filters, page after page."""
        offset: int | None = 0
        while offset is not None:
            page = self.list_models(**filters, offset=offset)
            yield from page.items
            offset = page.next_offset

    def get_version(self, name: str, version: str) -> ModelVersion:
        """`version` may be a version, ``"latest"`` or ``"@alias"``."""
        return ModelVersion.model_validate(self.get_json(f"/api/models/{_q(name)}/versions/{_q(version)}"))

    def list_versions(
        self,
        name: str,
        *,
        tags: list[str] | None = None,
        framework: str | None = None,
        stage: str | None = None,
        metrics: list[str] | None = None,
        order_by: str = "-version",
        limit: int = 100,
        offset: int = 0,
    ) -> Page[ModelVersion]:
        data = self.get_json(
            f"/api/models/{_q(name)}/versions",
            tags=tags,
            framework=framework,
            stage=stage,
            metric=metrics,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )
        return Page[ModelVersion].model_validate(data)

    def iter_versions(self, name: str, **filters: Any) -> Iterator[ModelVersion]:
        offset: int | None = 0
        while offset is not None:
            page = self.list_versions(name, **filters, offset=offset)
            yield from page.items
            offset = page.next_offset

    def update_model(
        self, name: str, *, description: str | None = None, tags: list[str] | None = None
    ) -> RegisteredModel:
        body = {k: v for k, v in {"description": description, "tags": tags}.items() if v is not None}
        return RegisteredModel.model_validate(
            self.request("PATCH", f"/api/models/{_q(name)}", json=body).json()
        )

    def update_version(
        self, name: str, version: str, *, description: str | None = None, tags: list[str] | None = None
    ) -> ModelVersion:
        body = {k: v for k, v in {"description": description, "tags": tags}.items() if v is not None}
        path = f"/api/models/{_q(name)}/versions/{_q(version)}"
        return ModelVersion.model_validate(self.request("PATCH", path, json=body).json())

    def archive_version(self, name: str, version: str) -> ModelVersion:
        path = f"/api/models/{_q(name)}/versions/{_q(version)}/archive"
        return ModelVersion.model_validate(self.request("POST", path, idempotent=True).json())

    def delete_version(self, name: str, version: str) -> None:
        self.request("DELETE", f"/api/models/{_q(name)}/versions/{_q(version)}")

    def delete_model(self, name: str) -> None:
        self.request("DELETE", f"/api/models/{_q(name)}")

    def lineage(self, name: str, version: str) -> Lineage:
        return Lineage.model_validate(self.get_json(f"/api/models/{_q(name)}/versions/{_q(version)}/lineage"))

    # artifacts ------------------------------------------------------------------------------
    def upload_artifact(
        self,
        name: str,
        version: str,
        path: str | Path,
        *,
        artifact_path: str | None = None,
        progress: Progress | None = None,
    ) -> ModelVersion:
        """Upload a file (streamed, checksum declared) or every file of a directory."""
        source = Path(path)
        if source.is_dir():
            files = sorted(p for p in source.rglob("*") if p.is_file())
            if not files:
                raise ValidationError(0, "EMPTY_DIRECTORY", f"{source} has no files to upload")
            total, done, result = sum(f.stat().st_size for f in files), 0, None
            for file in files:
                rel = file.relative_to(source).as_posix()
                target = f"{artifact_path.rstrip('/')}/{rel}" if artifact_path else rel
                shifted = partial(_shifted, progress, done, total) if progress else None
                result = self._put_file(name, version, file, target, shifted)
                done += file.stat().st_size
            assert result is not None
            return result
        return self._put_file(name, version, source, artifact_path or source.name, progress)

    def _put_file(
        self, name: str, version: str, file: Path, target: str, progress: Progress | None
    ) -> ModelVersion:
        size = file.stat().st_size
        digest = file_sha256(file)

        def body() -> Iterator[bytes]:
            sent = 0
            with open(file, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    sent += len(chunk)
                    if progress:
                        progress(sent, size)
                    yield chunk

        url = f"/api/models/{_q(name)}/versions/{_q(version)}/artifacts/{quote(target)}"
        headers = {
            "X-Checksum-Sha256": digest,
            "Content-Length": str(size),
            "Content-Type": "application/octet-stream",
        }
        # a generator body can't be replayed, so uploads are never retried blindly
        response = self.request("PUT", url, content=body(), headers=headers, idempotent=False)
        return ModelVersion.model_validate(response.json())

    def list_artifacts(self, name: str, version: str) -> list[Artifact]:
        data = self.get_json(f"/api/models/{_q(name)}/versions/{_q(version)}/artifacts")
        return [Artifact.model_validate(a) for a in data]

    def download_artifact(
        self,
        name: str,
        version: str,
        dest: str | Path,
        *,
        path: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream a version's artifact to `dest` (a ZIP when it has several files), verifying sha256.

        An existing partial `dest` + ".part" file is resumed with a Range request.
        """
        target = Path(dest)
        if target.is_dir():
            target = target / (Path(path).name if path else f"{name}-{version.lstrip('@')}.bin")
        partial = target.with_name(target.name + ".part")
        offset = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        url = f"/api/models/{_q(name)}/versions/{_q(version)}/download"
        with self.stream("GET", url, params={"path": path} if path else None, headers=headers) as response:
            if response.status_code != 206:
                offset = 0
            expected = response.headers.get("x-checksum-sha256")
            length = response.headers.get("content-length")
            total = offset + int(length) if length else None
            done = offset
            with open(partial, "ab" if offset else "wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            single = response.headers.get("content-type", "").startswith("application/octet-stream")
        if single and expected and file_sha256(partial) != expected:
            partial.unlink()
            raise ChecksumError(0, "CHECKSUM_MISMATCH", f"download of {name} {version} is corrupt; retry")
        partial.replace(target)
        return target

    # aliases, stages, history ---------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str, *, comment: str | None = None) -> Alias:
        body = {"version": version, **({"comment": comment} if comment else {})}
        return Alias.model_validate(
            self.request("PUT", f"/api/models/{_q(name)}/aliases/{_q(alias)}", json=body).json()
        )

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        """Resolve name@alias to its version."""
        return ModelVersion.model_validate(self.get_json(f"/api/models/{_q(name)}/aliases/{_q(alias)}"))

    def list_aliases(self, name: str) -> list[Alias]:
        return [Alias.model_validate(a) for a in self.get_json(f"/api/models/{_q(name)}/aliases")]

    def alias_state(self, models: Sequence[str] | None = None, etag: str | None = None) -> AliasState | None:
        """Where every alias and stage of `models` (at most 1,000; None or empty: every model) points.

        Pass the `etag` of the last state held: None comes back (a 304, no body read) until an
        alias or stage of those models moves, so polling this once a second costs one small
        request. The answer is bounded (10,000 aliases and stages; beyond that the registry
        answers a ValidationError, ALIAS_STATE_TOO_LARGE: name the models).

        >>> state = registry.alias_state(["fraud"])
        >>> state.version_of("fraud", "production")
        >>> registry.alias_state(["fraud"], etag=state.etag)   # None: nothing moved
        """
        names = [models] if isinstance(models, str) else list(models or [])
        headers = {"If-None-Match": etag} if etag else None
        response = self.request("GET", "/api/aliases", params={"model": names}, headers=headers)
        if response.status_code == 304:
            return None
        return AliasState.model_validate({**response.json(), "etag": response.headers.get("etag", "")})

    def delete_alias(self, name: str, alias: str) -> None:
        self.request("DELETE", f"/api/models/{_q(name)}/aliases/{_q(alias)}")

    def rollback_alias(self, name: str, alias: str) -> Alias | None:
        """Point the alias back at its previous target; None if that removed it."""
        data = self.request("POST", f"/api/models/{_q(name)}/aliases/{_q(alias)}/rollback").json()
        return Alias.model_validate(data) if data else None

    def transition_stage(
        self,
        name: str,
        version: str,
        stage: str,
        *,
        archive_existing: bool = False,
        comment: str | None = None,
    ) -> ModelVersion:
        body = {
            "stage": stage,
            "archive_existing": archive_existing,
            **({"comment": comment} if comment else {}),
        }
        path = f"/api/models/{_q(name)}/versions/{_q(version)}/stage"
        return ModelVersion.model_validate(self.request("POST", path, json=body).json())

    def rollback_stage(self, name: str, stage: str) -> list[str]:
        return list(self.request("POST", f"/api/models/{_q(name)}/stages/{_q(stage)}/rollback").json())

    def history(
        self, name: str, *, kind: str | None = None, of: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Transition]:
        data = self.get_json(f"/api/models/{_q(name)}/history", kind=kind, of=of, limit=limit, offset=offset)
        return Page[Transition].model_validate(data)
