"""Point-in-time retrieval against an independent brute-force oracle, on randomized data.

The oracle below is written from the specification only (it imports nothing of the service's
join code): for each entity row and feature set, among the rows of that entity with
`event_ts <= t` and, with a TTL, `event_ts >= t - ttl`, the one with the greatest
(event_ts, created_ts, order written) wins; no match gives nulls; a feature absent from the
chosen row gives null.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
SEC = 1_000_000
TTL_A, TTL_C = 10, 5  # seconds
URL = "/api/features/historical"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(us: int) -> str:
    """Independent of the service's formatting: datetime arithmetic, always with microseconds."""
    dt = datetime.fromtimestamp(us // SEC, UTC).replace(microsecond=us % SEC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shown_iso(us: int) -> str:
    """What the API shows: microseconds only when there are any."""
    text = iso(us)
    return text.replace(".000000Z", "Z")


@dataclass
class World:
    """Everything written, in write order, per feature set: (key, event_ts, created_ts, values)."""

    rows: dict[str, list[tuple[str, int, int, dict[str, Any]]]] = field(default_factory=dict)
    ttl: dict[str, int | None] = field(default_factory=dict)
    types: dict[str, dict[str, str]] = field(default_factory=dict)


def oracle(world: World, fs: str, key: str, t: int, feature: str) -> Any:
    best: tuple[int, int, int] | None = None
    value: Any = None
    ttl = world.ttl[fs]
    for order, (k, event_ts, created_ts, values) in enumerate(world.rows.get(fs, [])):
        if k != key or event_ts > t or (ttl is not None and event_ts < t - ttl * SEC):
            continue
        rank = (event_ts, created_ts, order)
        if best is None or rank > best:
            best, value = rank, values.get(feature)
    if value is not None and world.types[fs][feature] == "timestamp":
        return shown_iso(value)
    return value


def setup_registry(client: TestClient) -> None:
    def ok(r: Any) -> None:
        assert r.status_code == 201, r.text

    ok(client.post("/api/entities", json={"name": "user", "join_keys": ["user_id"]}))
    ok(
        client.post(
            "/api/entities", json={"name": "merchant", "join_keys": ["merchant_id"], "value_type": "int"}
        )
    )
    a = [{"name": "a_int", "type": "int"}, {"name": "a_str", "type": "string"}]
    ok(
        client.post(
            "/api/feature-sets", json={"name": "fs_a", "entity": "user", "features": a, "ttl_seconds": TTL_A}
        )
    )
    b = [{"name": "b_float", "type": "float"}, {"name": "b_ts", "type": "timestamp"}]
    ok(client.post("/api/feature-sets", json={"name": "fs_b", "entity": "user", "features": b}))
    c = [{"name": "c_bool", "type": "bool"}]
    ok(
        client.post(
            "/api/feature-sets",
            json={"name": "fs_c", "entity": "merchant", "features": c, "ttl_seconds": TTL_C},
        )
    )


def random_values(rng: random.Random, fs: str, version: int) -> dict[str, Any]:
    def maybe(v: Any) -> Any:
        return None if rng.random() < 0.15 else v

    if fs == "fs_a":
        values = {"a_int": maybe(rng.randint(-5, 5)), "a_str": maybe(rng.choice("xyz"))}
        if version == 2:
            values["a_new"] = maybe(rng.uniform(0, 1))
        return values
    if fs == "fs_b":
        return {"b_float": maybe(rng.uniform(-1, 1)), "b_ts": maybe(T0 + rng.randint(0, 10**9))}
    return {"c_bool": maybe(rng.random() < 0.5)}


def ingest(
    client: TestClient,
    world: World,
    rng: random.Random,
    fs: str,
    n: int,
    version: int = 1,
    explicit: bool = False,
) -> None:
    users = [f"u{i}" for i in range(6)]
    merchants = list(range(4))
    batch, shown = [], []
    for _ in range(n):
        key = rng.choice(merchants) if fs == "fs_c" else rng.choice(users)
        event_ts = T0 + rng.randint(0, 40) * SEC // 2 + rng.choice([0, 0, 0, 1])  # many ties
        created_ts = T0 + rng.randint(0, 3) * SEC  # ties on created_ts too: the later write wins
        values = random_values(rng, fs, version)
        row: dict[str, Any] = {
            "merchant_id" if fs == "fs_c" else "user_id": key,
            "event_timestamp": iso(event_ts),
            "created_timestamp": iso(created_ts),
        }
        row |= {k: (iso(v) if k == "b_ts" and v is not None else v) for k, v in values.items()}
        shown.append(row)
        batch.append((str(key), event_ts, created_ts, values))
    query = f"?version={version}" if explicit else ""
    r = client.post(f"/api/feature-sets/{fs}/rows{query}", json={"rows": shown})
    assert r.status_code == 201, r.text
    world.rows.setdefault(fs, []).extend(batch)


def build_world(client: TestClient, seed: int) -> World:
    rng = random.Random(seed)
    setup_registry(client)
    world = World(
        ttl={"fs_a": TTL_A, "fs_b": None, "fs_c": TTL_C},
        types={
            "fs_a": {"a_int": "int", "a_str": "string", "a_new": "float"},
            "fs_b": {"b_float": "float", "b_ts": "timestamp"},
            "fs_c": {"c_bool": "bool"},
        },
    )
    for fs in ("fs_a", "fs_b", "fs_c"):
        ingest(client, world, rng, fs, 60)
    new = [
        {"name": "a_int", "type": "int"},
        {"name": "a_str", "type": "string"},
        {"name": "a_new", "type": "float"},
    ]
    assert client.post("/api/feature-sets/fs_a/versions", json={"features": new}).status_code == 201
    # late arrivals: the later batches reuse the same event-time range
    ingest(client, world, rng, "fs_a", 50, version=2)
    ingest(client, world, rng, "fs_a", 20, version=1, explicit=True)  # an old writer still on version 1
    ingest(client, world, rng, "fs_b", 40)
    return world


def entity_rows(world: World, rng: random.Random, n: int) -> list[dict[str, Any]]:
    users = [f"u{i}" for i in range(8)]  # u6, u7 never written
    times = [T0 - 1, T0 + 100 * SEC]
    for _, event_ts, _, _ in world.rows["fs_a"] + world.rows["fs_c"]:
        times += [event_ts, event_ts - 1, event_ts + 1]
    for _, event_ts, _, _ in world.rows["fs_a"]:
        times += [event_ts + TTL_A * SEC + d for d in (-1, 0, 1)]  # TTL edges
    for _, event_ts, _, _ in world.rows["fs_c"]:
        times += [event_ts + TTL_C * SEC + d for d in (-1, 0, 1)]
    rows = []
    for i in range(n):
        rows.append(
            {
                "user_id": rng.choice(users),
                "merchant_id": rng.choice([0, 1, 2, 3, 9]),
                "event_timestamp": iso(rng.choice(times)),
                "label": i,
            }
        )
    rows += [dict(rows[j]) for j in rng.sample(range(n), 20)]  # duplicates, anywhere
    rng.shuffle(rows)
    return rows


FEATURES = ["fs_a:a_int", "fs_a:a_str", "fs_a:a_new", "fs_b:*", "c_bool"]
COLUMNS = ["a_int", "a_str", "a_new", "b_float", "b_ts", "c_bool"]
OWNER = {
    "a_int": "fs_a",
    "a_str": "fs_a",
    "a_new": "fs_a",
    "b_float": "fs_b",
    "b_ts": "fs_b",
    "c_bool": "fs_c",
}


def expected(world: World, rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        dt = datetime.fromisoformat(row["event_timestamp"].replace("Z", "+00:00"))
        t = (dt - EPOCH) // timedelta(microseconds=1)
        features = [
            oracle(world, OWNER[c], str(row["merchant_id"] if OWNER[c] == "fs_c" else row["user_id"]), t, c)
            for c in COLUMNS
        ]
        out.append([row["user_id"], row["merchant_id"], row["event_timestamp"], row["label"], *features])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_retrieval_agrees_with_the_brute_force_oracle(client: TestClient, seed: int) -> None:
    world = build_world(client, seed)
    rows = entity_rows(world, random.Random(seed + 100), 300)
    r = client.post(URL, json={"entity_rows": rows, "features": FEATURES})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["user_id", "merchant_id", "event_timestamp", "label", *COLUMNS]
    want = expected(world, rows)
    assert len(body["rows"]) == len(want)
    for i, (got, exp) in enumerate(zip(body["rows"], want, strict=True)):
        assert got == exp, f"entity row {i}: {rows[i]}"
    # the data exercise what they should: matches, misses, and versions on both sides
    a_new = [g[6] for g in body["rows"]]
    assert any(v is not None for v in a_new) and any(g[4] is not None and g[6] is None for g in body["rows"])
    assert any(all(v is None for v in g[4:]) for g in body["rows"])


def test_parquet_in_and_out_agree_with_the_oracle(client: TestClient) -> None:
    world = build_world(client, 7)
    rows = entity_rows(world, random.Random(8), 100)
    times = [datetime.fromisoformat(r["event_timestamp"].replace("Z", "+00:00")) for r in rows]
    table = pa.table(
        {
            "user_id": [r["user_id"] for r in rows],
            "merchant_id": pa.array([r["merchant_id"] for r in rows], pa.int64()),
            "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            "label": [r["label"] for r in rows],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    r = client.post(
        URL,
        params={"features": ",".join(FEATURES)},
        content=sink.getvalue(),
        headers={
            "content-type": "application/vnd.apache.parquet",
            "accept": "application/vnd.apache.parquet",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    out = pq.read_table(io.BytesIO(r.content))
    assert out.column_names == ["user_id", "merchant_id", "event_timestamp", "label", *COLUMNS]
    assert out.schema.field("b_ts").type == pa.timestamp("us", tz="UTC")
    assert out.column("event_timestamp").to_pylist() == table.column("event_timestamp").to_pylist()
    got = out.to_pylist()
    for i, (g, exp) in enumerate(zip(got, expected(world, rows), strict=True)):
        values = [g[c] for c in COLUMNS]
        values[4] = shown_iso(int(g["b_ts"].timestamp()) * SEC + g["b_ts"].microsecond) if g["b_ts"] else None
        assert values == exp[4:], f"entity row {i}"


def test_a_feature_service_gives_the_same_columns_as_its_references(client: TestClient) -> None:
    world = build_world(client, 11)
    body = {"name": "model_v1", "features": FEATURES}
    assert client.post("/api/feature-services", json=body).status_code == 201
    rows = entity_rows(world, random.Random(12), 50)
    by_service = client.post(URL, json={"entity_rows": rows, "feature_service": "model_v1"})
    by_refs = client.post(URL, json={"entity_rows": rows, "features": FEATURES})
    assert by_service.status_code == 200, by_service.text
    assert by_service.json() == by_refs.json()


def test_full_feature_names_prefix_the_feature_set(client: TestClient) -> None:
    setup_registry(client)
    rows = [{"user_id": "u1", "event_timestamp": iso(T0)}]
    r = client.post(URL, json={"entity_rows": rows, "features": ["fs_a:a_int"], "full_feature_names": True})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "columns": ["user_id", "event_timestamp", "fs_a__a_int"],
        "rows": [["u1", iso(T0), None]],
    }
