"""The online store contract (what push and materialization rely on), on each backend."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from fastapi.testclient import TestClient
from feature_store.keys import KEY_SEPARATOR
from feature_store.online import OnlineRow, OnlineStore
from feature_store.registry.views import FeatureDef, FeatureSetView


def view(set_id: int) -> FeatureSetView:
    features = (FeatureDef("a", "int"), FeatureDef("b", "string"))
    return FeatureSetView(set_id, f"set{set_id}", "user", ("user_id",), "string", None, 1, 1, {1: features})


def run(client: TestClient, coro_fn: Any, *args: Any) -> Any:
    return client.portal.call(coro_fn, *args)  # type: ignore[union-attr]


def store_of(client: TestClient) -> OnlineStore:
    store: OnlineStore = client.app.state.online  # type: ignore[attr-defined]
    return store


def test_write_applies_only_rows_not_older_than_the_stored_one(client: TestClient) -> None:
    store = store_of(client)
    v = view(1)
    assert run(client, store.write, v, [("u", 200, 1, {"a": 2}), ("w", 100, 1, {"a": 1, "b": "x"})]) == 2
    assert run(client, store.write, v, [("u", 100, 5, {"a": 1})]) == 0  # older event time
    assert run(client, store.write, v, [("u", 200, 0, {"a": 0})]) == 0  # same event, older created
    assert run(client, store.write, v, [("u", 200, 1, {"a": 3})]) == 1  # the same again: replaces
    assert run(client, store.write, v, []) == 0
    records = run(client, store.read, [(1, "u"), (1, "nobody"), (2, "u"), (1, "w")])
    assert records == [(200, 1, {"a": 3}), None, None, (100, 1, {"a": 1, "b": "x"})]


def test_a_batch_keeps_the_newest_row_of_each_entity(client: TestClient) -> None:
    store = store_of(client)
    rows: list[OnlineRow] = [("u", ts, 0, {"a": ts}) for ts in (5, 9, 1, 7)] + [("w", 3, 0, {"a": 3})]
    assert run(client, store.write, view(1), rows) == 2
    assert [r[2]["a"] for r in run(client, store.read, [(1, "u"), (1, "w")])] == [9, 3]


def test_concurrent_writers_never_roll_a_value_back(client: TestClient) -> None:
    store = store_of(client)
    v = view(1)
    stamps = list(range(60))
    random.Random(3).shuffle(stamps)

    async def writers() -> None:
        await asyncio.gather(
            *(store.write(v, [("hot", ts, 0, {"a": ts}), ("cold", -ts, 0, {})]) for ts in stamps)
        )

    run(client, writers)
    hot, cold = run(client, store.read, [(1, "hot"), (1, "cold")])
    assert hot == (59, 0, {"a": 59}) and cold == (0, 0, {})


def test_many_keys_odd_keys_and_large_batches_round_trip(client: TestClient) -> None:
    store = store_of(client)
    odd = [
        "",
        "with space",
        "semi:colon",
        "ünïcode",
        "a" + KEY_SEPARATOR + "b",
        "star*?[x]",
        "new\nline",
        "rs\x1ex",
    ]
    rows: list[OnlineRow] = [(f"k{i}", i, 0, {"a": i, "b": "v" * (i % 7)}) for i in range(2500)]
    rows += [(key, 1, 0, {"b": key}) for key in odd]
    assert run(client, store.write, view(3), rows) == len(rows)
    wanted = [(3, f"k{i}") for i in range(2499, -1, -3)] + [(3, key) for key in odd] + [(3, "absent")]
    records = run(client, store.read, wanted)
    assert [r[2]["a"] for r in records[: -len(odd) - 1]] == list(range(2499, -1, -3))
    assert [r[2]["b"] for r in records[-len(odd) - 1 : -1]] == odd
    assert records[-1] is None
    for n in (1, 4, 5, 600):  # on both sides of the backends' small/large read paths
        assert run(client, store.read, wanted[:n]) == records[:n]


def test_delete_feature_set_and_clear_forget_only_what_they_name(client: TestClient) -> None:
    store = store_of(client)
    run(client, store.write, view(1), [("u", 1, 0, {"a": 1})])
    run(client, store.write, view(2), [("u", 1, 0, {"a": 2})])
    run(client, store.write, view(12), [("u", 1, 0, {"a": 12})])
    run(client, store.delete_feature_set, 1)
    left = run(client, store.read, [(1, "u"), (2, "u"), (12, "u")])
    assert [r and r[2]["a"] for r in left] == [None, 2, 12]
    run(client, store.clear)
    assert run(client, store.read, [(2, "u"), (12, "u")]) == [None, None]
    run(client, store.ping)
