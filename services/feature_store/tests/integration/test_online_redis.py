"""The Redis online store's own connection handling, against the real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from feature_store.online.redis_store import RedisOnlineStore
from feature_store.registry.views import FeatureDef, FeatureSetView

VIEW = FeatureSetView(1, "s", "user", ("user_id",), "string", None, 1, 1, {1: (FeatureDef("a", "int"),)})


@pytest.fixture
def store_url(local_redis_url: str) -> Iterator[tuple[str, str]]:
    prefix = f"fs-resp-{uuid.uuid4().hex[:8]}"
    yield local_redis_url, prefix

    async def clean() -> None:
        store = RedisOnlineStore(local_redis_url, prefix)
        await store.clear()
        await store.close()

    asyncio.run(clean())


def test_reads_survive_a_killed_connection_and_flushed_scripts(store_url: tuple[str, str]) -> None:
    async def scenario() -> None:
        store = RedisOnlineStore(*store_url)
        try:
            await store.write(VIEW, [(f"u{i}", 1, 0, {"a": i}) for i in range(10)])
            keys = [(1, f"u{i}") for i in range(10)]
            assert [r and r[2]["a"] for r in await store.read(keys)] == list(range(10))
            assert store._reader is not None
            reader_id = await store._reader.call("CLIENT", "ID")
            assert await store.client.client_kill_filter(_id=reader_id) == 1
            assert [r and r[2]["a"] for r in await store.read(keys[:2])] == [0, 1]
            store._shas = {script: "0" * 40 for script in store._shas}  # as after SCRIPT FLUSH
            assert len(await store.read(keys)) == 10
            assert await store.write(VIEW, [("u0", 2, 0, {"a": 100})]) == 1
            many = await asyncio.gather(*(store.read(keys[i : i + 6]) for i in range(5)))
            assert [batch[0][2]["a"] for batch in many if batch[0]] == [100, 1, 2, 3, 4]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_unreachable_redis_fails_reads_instead_of_hanging() -> None:
    async def scenario() -> None:
        store = RedisOnlineStore("redis://127.0.0.1:1/0", "nowhere")
        try:
            with pytest.raises(OSError):
                await store.read([(1, "u")])
        finally:
            await store.close()

    asyncio.run(scenario())
