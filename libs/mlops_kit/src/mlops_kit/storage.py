"""Artifact storage: one interface, a local-directory and an S3 implementation chosen by settings."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from mlops_kit.errors import PayloadTooLarge, ServiceUnavailable, Unprocessable

CHUNK = 1024 * 1024
MAX_NAME_BYTES = 255


@dataclass
class SpooledFile:
    path: Path
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def verify(self, expected_sha256: str) -> None:
        """Raise CHECKSUM_MISMATCH (and drop the file) unless the bytes match the declared sha256."""
        if expected_sha256.lower() != self.sha256:
            self.discard()
            raise Unprocessable(
                "checksum mismatch: the uploaded bytes do not match the declared sha256",
                {"declared": expected_sha256.lower(), "computed": self.sha256, "size": self.size},
                code="CHECKSUM_MISMATCH",
            )


@dataclass(frozen=True)
class StoredEntry:
    path: str  # relative to the listed prefix
    is_dir: bool
    size: int | None


class ArtifactStore(ABC):
    """Keys are '/'-separated relative paths; the store never sees a whole file in memory."""

    def __init__(self, spool_dir: Path):
        self.spool_dir = spool_dir

    @abstractmethod
    def put_file(self, key: str, source: Path) -> None: ...

    @abstractmethod
    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end] (inclusive end, like HTTP ranges)."""

    @abstractmethod
    def size(self, key: str) -> int | None: ...

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def check(self) -> None:
        """Raise ServiceUnavailable when the store cannot be used."""

    @abstractmethod
    def list_dir(self, prefix: str) -> list[StoredEntry]:
        """The files and sub-folders directly under `prefix` (one level), sorted by path."""

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    async def spool(
        self, chunks: AsyncIterator[bytes], *, max_bytes: int, expected_sha256: str | None = None
    ) -> SpooledFile:
        """Write an incoming stream to a local temp file, hashing on the way."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"upload-{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        fh = await anyio.to_thread.run_sync(open, path, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(
                        f"upload exceeds the limit of {max_bytes} bytes", {"max_bytes": max_bytes}
                    )
                buffer += chunk
                if len(buffer) >= CHUNK:
                    await anyio.to_thread.run_sync(_write_and_hash, fh, digest, bytes(buffer))
                    buffer.clear()
            if buffer:
                await anyio.to_thread.run_sync(_write_and_hash, fh, digest, bytes(buffer))
        except BaseException:
            fh.close()
            path.unlink(missing_ok=True)
            raise
        fh.close()
        spooled = SpooledFile(path, size, digest.hexdigest())
        if expected_sha256:
            spooled.verify(expected_sha256)
        return spooled


def _write_and_hash(fh: object, digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    fh.write(data)  # type: ignore[attr-defined]


def _read_range(path: Path, start: int, end: int | None) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            data = fh.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            yield data


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: Path):
        self.root = root.resolve()
        super().__init__(self.root / ".spool")

    def _path(self, key: str) -> Path:
        # a file system refuses a name part over 255 bytes (ENAMETOOLONG): a 422, not an OSError
        if any(len(part.encode()) > MAX_NAME_BYTES for part in key.split("/")):
            raise Unprocessable(f"invalid artifact key: a part of it is longer than {MAX_NAME_BYTES} bytes")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise Unprocessable(f"invalid artifact key {key[:200]!r}")
        return path

    def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        if source.parent == self.spool_dir:
            os.replace(source, tmp)
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return _read_range(self._path(key), start, end)

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def list_dir(self, prefix: str) -> list[StoredEntry]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        entries = [
            StoredEntry(child.name, child.is_dir(), None if child.is_dir() else child.stat().st_size)
            for child in base.iterdir()
            if not child.name.startswith(".")
        ]
        return sorted(entries, key=lambda e: e.path)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".ready-"):
                pass
        except OSError as exc:
            raise ServiceUnavailable(f"artifact directory not writable: {exc}") from exc


@dataclass(frozen=True)
class S3Timeouts:
    """minio's own defaults wait 5 minutes per read and retry 5 times; a stalled S3 server would
    hold a request for half an hour."""

    connect: float = 5.0
    read: float = 30.0  # per socket read: a large object streams for longer
    retries: int = 2


def _s3_http_client(timeouts: S3Timeouts, secure: bool) -> object:
    import certifi
    import urllib3

    retry = urllib3.Retry(total=timeouts.retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])
    timeout = urllib3.Timeout(connect=timeouts.connect, read=timeouts.read)
    if secure:
        return urllib3.PoolManager(
            timeout=timeout, maxsize=10, retries=retry, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where()
        )
    return urllib3.PoolManager(timeout=timeout, maxsize=10, retries=retry)


@contextmanager
def s3_unavailable(bucket: str) -> Iterator[None]:
    """A failed or timed-out S3 call is a 503 ARTIFACT_STORE_UNAVAILABLE, not a 500."""
    import urllib3

    try:
        yield
    except urllib3.exceptions.HTTPError as exc:
        raise ServiceUnavailable(
            f"S3 store {bucket!r} unreachable: {type(exc).__name__}: {exc}"[:500],
            {"retryable": True},
            code="ARTIFACT_STORE_UNAVAILABLE",
        ) from exc


class S3ArtifactStore(ArtifactStore):
    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        spool_dir: Path,
        timeouts: S3Timeouts | None = None,
        probe_timeout: float = 1.0,
    ):
        from minio import Minio

        super().__init__(spool_dir)
        endpoint = endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")

        def client(limits: S3Timeouts) -> Minio:
            http = _s3_http_client(limits, secure)
            kwargs = {"access_key": access_key, "secret_key": secret_key, "secure": secure, "region": region}
            return Minio(endpoint, **kwargs, http_client=http)  # type: ignore[arg-type]

        self.client = client(timeouts or S3Timeouts())
        # readiness asks once, briefly: a stalled server is reported down, not waited for
        self.probe = client(S3Timeouts(probe_timeout, probe_timeout, 0))
        self.bucket = bucket
        self._bucket_ready = False

    def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with s3_unavailable(self.bucket):
            self._make_bucket()
        self._bucket_ready = True

    def _make_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            from minio.error import S3Error

            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def put_file(self, key: str, source: Path) -> None:
        self.ensure_bucket()
        with s3_unavailable(self.bucket):
            self.client.fput_object(self.bucket, key, str(source), part_size=16 * 1024 * 1024)
        source.unlink(missing_ok=True)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        length = 0 if end is None else end - start + 1
        with s3_unavailable(self.bucket):
            response = self.client.get_object(self.bucket, key, offset=start, length=length)
        try:
            yield from response.stream(CHUNK)
        finally:
            response.close()
            response.release_conn()

    def size(self, key: str) -> int | None:
        from minio.error import S3Error

        try:
            with s3_unavailable(self.bucket):
                return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                return None
            raise

    def delete(self, key: str) -> None:
        with s3_unavailable(self.bucket):
            self.client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> None:
        from minio.deleteobjects import DeleteObject

        with s3_unavailable(self.bucket):
            objects = self.client.list_objects(self.bucket, prefix=prefix.rstrip("/") + "/", recursive=True)
            errors = self.client.remove_objects(
                self.bucket, (DeleteObject(o.object_name) for o in objects if o.object_name)
            )
            for _ in errors:
                pass

    def list_dir(self, prefix: str) -> list[StoredEntry]:
        self.ensure_bucket()
        base = prefix.strip("/") + "/" if prefix.strip("/") else ""
        entries = []
        with s3_unavailable(self.bucket):
            for obj in self.client.list_objects(self.bucket, prefix=base, recursive=False):
                name = (obj.object_name or "")[len(base) :]
                if obj.is_dir:
                    entries.append(StoredEntry(name.rstrip("/"), True, None))
                elif name:
                    entries.append(StoredEntry(name, False, obj.size))
        return sorted(entries, key=lambda e: e.path)

    def check(self) -> None:
        try:
            if not self.probe.bucket_exists(self.bucket):
                self.ensure_bucket()
        except Exception as exc:
            raise ServiceUnavailable(f"S3 store {self.bucket!r} unreachable: {exc}") from exc


def build_store(settings: object) -> ArtifactStore:
    from mlops_kit.settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    if settings.artifact_store == "s3":
        return S3ArtifactStore(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
            spool_dir=settings.service_dir.resolve() / "spool",
            timeouts=S3Timeouts(
                settings.s3_connect_timeout_seconds, settings.s3_read_timeout_seconds, settings.s3_max_retries
            ),
            probe_timeout=settings.ready_timeout_seconds,
        )
    return LocalArtifactStore(settings.resolved_artifact_dir)
