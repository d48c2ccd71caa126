"""The same behaviour from both artifact stores: local directory and a real S3 server."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from mlops_kit.errors import PayloadTooLarge, ServiceUnavailable, Unprocessable
from mlops_kit.storage import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from mlops_kit.testing import S3Server

DATA = os.urandom(2_500_000)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        yield LocalArtifactStore(tmp_path / "artifacts")
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    yield S3ArtifactStore(
        endpoint=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        bucket=f"kit-{secrets.token_hex(4)}",
        spool_dir=tmp_path / "spool",
    )


async def _chunks(data: bytes, size: int = 300_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _spool(store: ArtifactStore, data: bytes, **kwargs: object):
    return anyio.run(lambda: store.spool(_chunks(data), **kwargs))  # type: ignore[arg-type]


def test_spool_hashes_and_put_open_roundtrip(store: ArtifactStore) -> None:
    spooled = _spool(store, DATA, max_bytes=10**9)
    assert (spooled.size, spooled.sha256) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    store.put_file("a/b/model.bin", spooled.path)
    assert store.size("a/b/model.bin") == len(DATA)
    assert b"".join(store.open("a/b/model.bin")) == DATA
    assert b"".join(store.open("a/b/model.bin", 1000, 1999)) == DATA[1000:2000]
    assert b"".join(store.open("a/b/model.bin", len(DATA) - 5)) == DATA[-5:]


def test_declared_checksum_mismatch_leaves_no_temp_file(store: ArtifactStore) -> None:
    with pytest.raises(Unprocessable) as mismatch:
        _spool(store, DATA, max_bytes=10**9, expected_sha256="0" * 64)
    assert mismatch.value.code == "CHECKSUM_MISMATCH"
    assert list(store.spool_dir.iterdir()) == []


def test_size_limit_stops_the_stream_and_leaves_nothing(store: ArtifactStore) -> None:
    with pytest.raises(PayloadTooLarge):
        _spool(store, DATA, max_bytes=1_000_000)
    assert list(store.spool_dir.iterdir()) == []


def test_delete_and_delete_prefix(store: ArtifactStore, tmp_path: Path) -> None:
    for key in ("m/1/a", "m/1/sub/b", "m/2/c"):
        source = tmp_path / "src"
        source.write_bytes(key.encode())
        store.put_file(key, source)
    store.delete_prefix("m/1")
    assert [store.exists(k) for k in ("m/1/a", "m/1/sub/b", "m/2/c")] == [False, False, True]
    store.delete("m/2/c")
    assert store.size("m/2/c") is None
    store.check()


def test_list_dir_shows_one_level_with_sizes(store: ArtifactStore, tmp_path: Path) -> None:
    for key in ("r/x/a.txt", "r/x/sub/b.txt", "r/x/sub/deeper/c.txt", "r/y/d.txt"):
        source = tmp_path / "src"
        source.write_bytes(key.encode())
        store.put_file(key, source)
    top = store.list_dir("r/x")
    assert [(e.path, e.is_dir, e.size) for e in top] == [("a.txt", False, 9), ("sub", True, None)]
    assert [e.path for e in store.list_dir("r/x/sub/")] == ["b.txt", "deeper"]
    assert store.list_dir("r/nothing") == []


def test_local_store_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    with pytest.raises(Unprocessable):
        store.size("../escape")


def test_local_store_refuses_a_name_part_the_file_system_cannot_hold(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    long = "x" * 256  # one byte past what ext4 and most file systems allow (ENAMETOOLONG)
    for call in (store.size, store.delete, store.delete_prefix, store.list_dir):
        with pytest.raises(Unprocessable, match="longer than 255 bytes"):
            call(f"a/{long}/b")
    with pytest.raises(Unprocessable):
        store.open(f"{long}.txt")
    assert store.size("a/" + "y" * 255) is None  # the longest allowed part is fine


def test_unreachable_s3_is_not_ready(tmp_path: Path) -> None:
    from mlops_kit.testing import free_port

    store = S3ArtifactStore(
        endpoint=f"127.0.0.1:{free_port()}",
        access_key="a",
        secret_key="b" * 20,
        bucket="nowhere",
        spool_dir=tmp_path,
    )
    store.client._http.connection_pool_kw["retries"] = 0  # fail fast instead of urllib3's backoff
    with pytest.raises(ServiceUnavailable):
        store.check()
