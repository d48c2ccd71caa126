"""The model registry's monitoring, read over HTTP with timeouts. Called only outside database
transactions (the monitor measures between its claim and its decision)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx


class MonitoringError(Exception):
    """The registry could not answer (unreachable, an error status, not JSON)."""


class RegistryMonitoring:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def drift(self, model: str, window_minutes: int) -> dict[str, Any]:
        return self._get(
            f"/api/models/{quote(model, safe='')}/monitoring/drift", {"last": f"{window_minutes}m"}
        )

    def performance(
        self, model: str, *, window_minutes: int | None = None, since: datetime | None = None
    ) -> dict[str, Any]:
        params = {"last": f"{window_minutes}m"} if window_minutes else {}
        if since is not None:
            params["start"] = since.isoformat()
        return self._get(f"/api/models/{quote(model, safe='')}/monitoring/performance", params)

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise MonitoringError(f"the model registry is unreachable: {exc!r}") from None
        if response.status_code >= 400:
            raise MonitoringError(f"GET {path} answered {response.status_code}: {response.text[:500]}")
        try:
            body = response.json()
        except ValueError:
            raise MonitoringError(f"GET {path} answered something that is not JSON") from None
        if not isinstance(body, dict):
            raise MonitoringError(f"GET {path} answered {type(body).__name__}, not an object")
        return body
