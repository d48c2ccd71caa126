"""Client for model serving (:8080): deployments (a registered model's alias, stage or version
behind a prediction API) and predictions.

>>> with ServingClient() as serving:                  # MLOPS_MODEL_SERVING_URL, MLOPS_API_KEY
...     serving.deploy("fraud-api", "fraud", alias="production")
...     serving.wait_ready("fraud-api")
...     answer = serving.predict("fraud-api", [[1.5, -0.3, 2.1]], user_id="user_123")
...     answer.predictions[0].prediction, answer.predictions[0].model_version
...     serving.outcomes("fraud-api", [{"request_id": answer.predictions[0].request_id, "label": 1}])
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_client._base import ServiceClient
from mlops_client.config import service_url
from mlops_client.models import Page
from mlops_client.registry import _q
from mlops_client.serving_models import Deployment, OutcomesAccepted, Predictions


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class ServingClient(ServiceClient):
    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("model_serving"), **kwargs)

    # deployments --------------------------------------------------------------------------------
    def deploy(
        self,
        name: str,
        model: str,
        *,
        alias: str | None = None,
        version: str | None = None,
        stage: str | None = None,
        feature_service: str | None = None,
        experiment: str | None = None,
        monitoring: bool = True,
        shadow: Mapping[str, str] | None = None,
        replicas: Mapping[str, int] | None = None,
    ) -> Deployment:
        """Serve `model` at `alias` (followed as it moves), `stage`, or a pinned `version`
        (none of them: the `production` alias)."""
        body = _present(
            {
                "name": name,
                "model": model,
                "alias": alias,
                "version": version,
                "stage": stage,
                "feature_service": feature_service,
                "experiment": experiment,
                "monitoring": monitoring,
                "shadow": dict(shadow) if shadow else None,
                "replicas": dict(replicas) if replicas else None,
            }
        )
        return Deployment.model_validate(self.request("POST", "/api/deployments", json=body).json())

    def get_deployment(self, name: str) -> Deployment:
        return Deployment.model_validate(self.get_json(f"/api/deployments/{_q(name)}"))

    def list_deployments(
        self, *, model: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Deployment]:
        data = self.get_json("/api/deployments", model=model, limit=limit, offset=offset)
        return Page[Deployment].model_validate(data)

    def update_deployment(self, name: str, **changes: Any) -> Deployment:
        """Change a deployment (`alias`, `version`, `stage`, `feature_service`, `monitoring`, ...)."""
        response = self.request("PATCH", f"/api/deployments/{_q(name)}", json=changes)
        return Deployment.model_validate(response.json())

    def delete_deployment(self, name: str) -> None:
        self.request("DELETE", f"/api/deployments/{_q(name)}")

    def wait_ready(self, name: str, *, version: str | None = None, timeout: float = 120.0) -> Deployment:
        """Poll until the deployment serves a version (`version`, when given); raises TimeoutError,
        with the deployment's last error, when it does not in time."""
        deadline = time.monotonic() + timeout
        while True:
            deployment = self.get_deployment(name)
            loaded = deployment.status.loaded
            if loaded is not None and (version is None or loaded.version == version):
                return deployment
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{name} is {deployment.status.state} (last error: {deployment.status.last_error})"
                )
            time.sleep(0.2)

    # predictions --------------------------------------------------------------------------------
    def predict(
        self,
        name: str,
        instances: Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]] | None = None,
        *,
        inputs: Mapping[str, Sequence[Any]] | None = None,
        user_id: str | None = None,
        request_ids: Sequence[str] | None = None,
        entities: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Predictions:
        """Predict rows (`instances`: lists of values, or objects of named values) or named
        columns (`inputs`). With `user_id`, the deployment's experiment picks the variant."""
        if (instances is None) == (inputs is None):
            raise ValueError("give either instances or inputs")
        body = _present(
            {
                "instances": [list(r) if not isinstance(r, Mapping) else dict(r) for r in instances]
                if instances is not None
                else None,
                "inputs": {k: list(v) for k, v in inputs.items()} if inputs is not None else None,
                "user_id": user_id,
                "request_ids": list(request_ids) if request_ids else None,
                "entities": entities if isinstance(entities, Mapping) or entities is None else list(entities),
            }
        )
        response = self.request("POST", f"/api/deployments/{_q(name)}/predict", json=body, idempotent=True)
        return Predictions.model_validate(response.json())

    def outcomes(self, name: str, outcomes: Sequence[Mapping[str, Any]]) -> OutcomesAccepted:
        """Outcomes by request id: `{"request_id", "metric", "value"}` for the A/B experiment that
        routed the request, and/or `{"request_id", "label"}` for model monitoring."""
        body = {"outcomes": [dict(o) for o in outcomes]}
        response = self.request("POST", f"/api/deployments/{_q(name)}/outcomes", json=body)
        return OutcomesAccepted.model_validate(response.json())

    def model_info(self, name: str | None = None) -> dict[str, Any]:
        path = "/model-info" if name is None else f"/api/deployments/{_q(name)}/model-info"
        return self.get_json(path)  # type: ignore[no-any-return]
