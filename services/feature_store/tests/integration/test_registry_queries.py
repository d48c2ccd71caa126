"""How many SQL statements registry listings cost: a fixed number, whatever the page holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """The queries the app's engines run inside the block (not transaction control such as BEGIN)."""
    db = client.app.state.db  # type: ignore[attr-defined]
    engines = list({id(e): e for e in (db.reader, db.writer)}.values())
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


def _make_sets(client: TestClient, n: int) -> None:
    for e in range(2):
        assert client.post("/api/entities", json={"name": f"ent{e}"}).status_code == 201
    for i in range(n):
        body = {"name": f"set{i:02d}", "entity": f"ent{i % 2}", "features": [{"name": "a", "type": "int"}]}
        assert client.post("/api/feature-sets", json=body).status_code == 201
        for v in range(i % 3):  # 1 to 3 versions
            more = [{"name": "a", "type": "int"}, *({"name": f"b{k}", "type": "float"} for k in range(v + 1))]
            assert (
                client.post(f"/api/feature-sets/set{i:02d}/versions", json={"features": more}).status_code
                == 201
            )


def test_listing_feature_sets_costs_the_same_statements_for_one_or_many(client: TestClient) -> None:
    _make_sets(client, 8)
    with statements(client) as one:
        page = client.get("/api/feature-sets", params={"limit": 1})
    assert page.status_code == 200 and len(page.json()["items"]) == 1
    with statements(client) as many:
        page = client.get("/api/feature-sets")
    assert page.status_code == 200
    items = page.json()["items"]
    assert [s["name"] for s in items] == [f"set{i:02d}" for i in range(8)]
    assert [s["versions"] for s in items] == [list(range(1, i % 3 + 2)) for i in range(8)]
    assert (
        [s["version"] for s in items] == [s["latest_version"] for s in items] == [i % 3 + 1 for i in range(8)]
    )
    assert [s["entity"] for s in items] == [f"ent{i % 2}" for i in range(8)]
    assert [len(s["features"]) for s in items] == [1 + (i % 3) for i in range(8)]
    # the sets, their entities, their latest versions, their version numbers
    assert len(many) == len(one) == 4, many
