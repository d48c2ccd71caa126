"""Tracking client, experiments: create, look up, list, update, delete and restore."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_client._base import ServiceClient
from mlops_client.errors import MlopsError, NotFoundError
from mlops_client.tracking_common import experiment_path, filter_literal, follow, present, quote_part
from mlops_client.tracking_models import Experiment, TokenPage


class ExperimentsMixin(ServiceClient):
    # experiments ------------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> Experiment:
        body = present(
            {
                "name": name,
                "description": description,
                "tags": dict(tags or {}),
                "artifact_location": artifact_location,
            }
        )
        return Experiment.model_validate(self.request("POST", "/api/experiments", json=body).json())

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment.model_validate(self.get_json(experiment_path(experiment_id)))

    def get_experiment_by_name(self, name: str) -> Experiment:
        """The experiment called `name`, deleted ones included."""
        if "/" not in name:
            return Experiment.model_validate(self.get_json(f"/api/experiments/by-name/{quote_part(name)}"))
        # the service's by-name route can't match an encoded "/", so look such names up by filter
        page = self.list_experiments(filter=f"name = {filter_literal(name)}", view="ALL", limit=1)
        if not page.items:
            raise NotFoundError(404, "EXPERIMENT_NOT_FOUND", f"no experiment named {name!r}", {"name": name})
        return page.items[0]

    def get_or_create_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        artifact_location: str | None = None,
    ) -> Experiment:
        """The experiment called `name`, created (with the other fields) if there is none.

        A deleted experiment is returned as it is (`lifecycle_stage == "deleted"`); restore it to use it.
        """
        try:
            return self.get_experiment_by_name(name)
        except NotFoundError:
            pass
        try:
            return self.create_experiment(
                name, description=description, tags=tags, artifact_location=artifact_location
            )
        except MlopsError as exc:
            if exc.code != "EXPERIMENT_EXISTS":
                raise
        return self.get_experiment_by_name(name)  # another client created it in between

    def list_experiments(
        self,
        *,
        filter: str | None = None,
        name_prefix: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        limit: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Experiment]:
        """One page; `filter` like ``"name LIKE 'churn%' and tags.team = 'growth'"``,
        `view` ACTIVE_ONLY, DELETED_ONLY or ALL."""
        data = self.get_json(
            "/api/experiments",
            filter=filter,
            name_prefix=name_prefix,
            order_by=order_by,
            view=view,
            limit=limit,
            page_token=page_token,
        )
        return TokenPage[Experiment].model_validate(data)

    def iter_experiments(self, **filters: Any) -> Iterator[Experiment]:
        """Every experiment matching `list_experiments` filters, page after page."""
        return follow(lambda token: self.list_experiments(**filters, page_token=token))

    def update_experiment(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Rename, describe, or set tags (merged into the existing ones)."""
        body = present({"name": name, "description": description, "tags": dict(tags) if tags else None})
        response = self.request("PATCH", experiment_path(experiment_id), json=body)
        return Experiment.model_validate(response.json())

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft delete: the experiment and its runs are hidden until restored."""
        self.request("DELETE", experiment_path(experiment_id))

    def restore_experiment(self, experiment_id: str) -> Experiment:
        response = self.request("POST", f"{experiment_path(experiment_id)}/restore", idempotent=True)
        return Experiment.model_validate(response.json())
