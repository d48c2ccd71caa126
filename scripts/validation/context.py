"""What every journey gets: the run's name prefix, the platform's clients, a scratch directory."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from mlops_client import MlopsClient
from mlops_client.config import service_url

from validation.core import Table, run_prefix

SERVICES = (  # module name, what the table calls it
    ("model_registry", "registry"),
    ("experiment_tracking", "tracking"),
    ("feature_store", "features"),
    ("pipeline_orchestrator", "pipelines"),
    ("ab_testing", "ab"),
    ("model_serving", "serving"),
)
TIMEOUT = 30.0


def http_client(service: str) -> httpx.Client:
    """Plain HTTP to a service (for what the Python client does not wrap), with the API key."""
    key = os.environ.get("MLOPS_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=service_url(service), headers=headers, timeout=TIMEOUT)


@dataclass
class Context:
    table: Table
    prefix: str = field(default_factory=run_prefix)
    mlops: MlopsClient = field(default_factory=lambda: MlopsClient(timeout=TIMEOUT))
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mlops-validate-")))
    alerting: bool = True
    """the loop's Prometheus and AlertManager steps (off: `--without-alerting`)"""
    _http: dict[str, httpx.Client] = field(default_factory=dict)

    def name(self, what: str) -> str:
        """A clearly named test object: `validate-<timestamp>-<what>`."""
        return f"{self.prefix}-{what}"

    def http(self, service: str) -> httpx.Client:
        if service not in self._http:
            self._http[service] = http_client(service)
        return self._http[service]

    def close(self) -> None:
        self.mlops.close()
        for client in self._http.values():
            client.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


def answer(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer; an error naming the status and the platform's error otherwise."""
    if response.status_code >= 400:
        from mlops_client.errors import error_for

        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise error_for(response.status_code, body)
    return response.json() if response.content else None
