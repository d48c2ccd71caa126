"""The data plane's routes: ingestion, push, materialization, serving, retrieval, statistics."""

from fastapi import APIRouter

from feature_store.api import historical, ingest, materialize, serving, statistics

router = APIRouter()
for module in (serving, ingest, historical, materialize, statistics):
    router.include_router(module.router)
