"""Typed dependencies: the per-process objects the app's lifespan makes (see app.py), handed to
routes. They are plain reads of the app's state (no thread hop), cheap enough for the hot path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from feature_store.offline.materialize import JobRunner
from feature_store.online.base import OnlineStore
from feature_store.online.metrics import OnlineMetrics
from feature_store.online.serving import Serving
from feature_store.registry.views import ViewCache
from feature_store.settings import FeatureStoreSettings


async def _views(request: Request) -> ViewCache:
    views: ViewCache = request.app.state.views
    return views


async def _serving(request: Request) -> Serving:
    serving: Serving = request.app.state.serving
    return serving


async def _online(request: Request) -> OnlineStore:
    # read per request: a test swaps the store for a failing one
    online: OnlineStore = request.app.state.online
    return online


async def _online_metrics(request: Request) -> OnlineMetrics:
    metrics: OnlineMetrics = request.app.state.online_metrics
    return metrics


async def _jobs(request: Request) -> JobRunner:
    jobs: JobRunner = request.app.state.materialization
    return jobs


async def _settings(request: Request) -> FeatureStoreSettings:
    settings: FeatureStoreSettings = request.app.state.settings
    return settings


ViewsDep = Annotated[ViewCache, Depends(_views)]
ServingDep = Annotated[Serving, Depends(_serving)]
OnlineDep = Annotated[OnlineStore, Depends(_online)]
OnlineMetricsDep = Annotated[OnlineMetrics, Depends(_online_metrics)]
JobRunnerDep = Annotated[JobRunner, Depends(_jobs)]
SettingsDep = Annotated[FeatureStoreSettings, Depends(_settings)]
