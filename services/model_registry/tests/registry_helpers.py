"""Helpers shared by the registry's tests (imported by name: the tests dir is on pytest's pythonpath)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from mlops_kit.storage import ArtifactStore, LocalArtifactStore, S3ArtifactStore


def stored_keys(store: ArtifactStore) -> set[str]:
    """Every object in the artifact store (what 'no orphan artifact' is checked against)."""
    if isinstance(store, LocalArtifactStore):
        return {
            str(p.relative_to(store.root))
            for p in store.root.rglob("*")
            if p.is_file() and not p.name.startswith(".") and ".spool" not in p.parts
        }
    assert isinstance(store, S3ArtifactStore)
    store.ensure_bucket()
    return {o.object_name for o in store.client.list_objects(store.bucket, recursive=True) if o.object_name}


def register(client: TestClient, name: str = "churn", **fields: object) -> dict:
    response = client.post("/api/models", json={"name": name, "framework": "sklearn", **fields})
    assert response.status_code == 201, response.text
    return response.json()
