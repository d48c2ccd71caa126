"""Online features for a prediction request: one call to the feature store for all its rows,
bounded by `timeout` (a slow or absent store is a fast, clear 503, never a hung request)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from model_serving.errors import FeaturesNotFound, FeaturesUnavailable


class FeatureLookup:
    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self.client, self.timeout = client, timeout

    async def values(self, feature_service: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = orjson.dumps({"entities": entities, "feature_service": feature_service})
        try:
            response = await self.client.post(
                "/api/features/online",
                content=body,
                headers={"content-type": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise FeaturesUnavailable(
                f"the feature store did not answer within {self.timeout} s: {type(exc).__name__}",
                {"feature_service": feature_service},
            ) from None
        if response.status_code in (404, 422, 400):
            detail = _error(response.content)
            raise FeaturesNotFound(
                f"the feature store refused the lookup: {detail.get('message', response.status_code)}",
                {"feature_service": feature_service, "feature_store": detail},
            )
        if response.status_code != 200:
            raise FeaturesUnavailable(
                f"the feature store answered {response.status_code}", {"feature_service": feature_service}
            )
        results = orjson.loads(response.content)["results"]
        return [r["values"] for r in results]


def _error(content: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(content)
        return body.get("error", {}) if isinstance(body, dict) else {}
    except orjson.JSONDecodeError:
        return {}
