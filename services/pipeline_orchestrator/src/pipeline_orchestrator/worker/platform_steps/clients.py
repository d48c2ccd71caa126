"""What the platform steps share: one client per service, URL and key (per process), the tracking
experiment ids, run lineage tags and the input conversions."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pipeline_orchestrator.worker.context import TaskContext, TaskFailed

if TYPE_CHECKING:
    from mlops_client import AbTestingClient, FeatureStoreClient, RegistryClient, TrackingClient

AB_TESTING_TIMEOUT = 30.0  # seconds for each A/B testing request (creating and starting a canary)

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}
_experiment_ids: dict[tuple[str, str], str] = {}


def _client(service: str) -> Any:
    """One client per service, URL and key, per process (making one costs milliseconds)."""
    from mlops_client import AbTestingClient, FeatureStoreClient, RegistryClient, TrackingClient
    from mlops_client.config import service_url

    url, key = service_url(service), os.environ.get("MLOPS_API_KEY") or None
    cache_key = (service, url, key)
    client = _clients.get(cache_key)
    if client is None:
        cls = {
            "model_registry": RegistryClient,
            "experiment_tracking": TrackingClient,
            "feature_store": FeatureStoreClient,
            "ab_testing": AbTestingClient,
        }[service]
        timeout = AB_TESTING_TIMEOUT if service == "ab_testing" else None
        with _lock:
            client = _clients.get(cache_key) or cls(url, api_key=key, timeout=timeout)
            _clients[cache_key] = client
    return client


def tracking_client() -> TrackingClient:
    client: TrackingClient = _client("experiment_tracking")
    return client


def registry_client() -> RegistryClient:
    client: RegistryClient = _client("model_registry")
    return client


def feature_store_client() -> FeatureStoreClient:
    client: FeatureStoreClient = _client("feature_store")
    return client


def ab_testing_client() -> AbTestingClient:
    client: AbTestingClient = _client("ab_testing")
    return client


def experiment_id(client: TrackingClient, name: str) -> str:
    """The id of the experiment called `name`, created if missing (cached per process)."""
    key = (client.base_url, name)
    found = _experiment_ids.get(key)
    if found is None:
        experiment = client.get_or_create_experiment(name)
        if experiment.lifecycle_stage != "active":
            raise TaskFailed(f"tracking experiment {name!r} is deleted; restore it or use another name")
        found = _experiment_ids[key] = experiment.id
    return found


def lineage_tags(ctx: TaskContext) -> dict[str, str]:
    """Tracking run tags tying a run to the pipeline run, task and attempt that made it."""
    return {
        "mlops.pipeline": ctx.pipeline,
        "mlops.pipeline_run_id": ctx.run_id,
        "mlops.task": ctx.task,
        "mlops.task_attempt": str(ctx.attempt),
    }


def param_values(params: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(k): v if isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
        for k, v in params.items()
    }


def str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def alias_target(registry: RegistryClient, name: str, alias: str) -> Any:
    """The version `alias` points at, or None (no such model or alias)."""
    from mlops_client import NotFoundError

    try:
        return registry.get_alias(name, alias)
    except NotFoundError:
        return None
