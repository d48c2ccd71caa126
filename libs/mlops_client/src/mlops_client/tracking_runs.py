"""Tracking client, runs: create, read, update, search and compare runs; their params and tags."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlops_client._base import ServiceClient
from mlops_client.tracking_common import (
    PARAMS_PER_REQUEST,
    batches,
    experiment_path,
    follow,
    present,
    quote_part,
    run_path,
)
from mlops_client.tracking_models import Dataset, Run, RunComparison, RunSource, TokenPage


class RunsMixin(ServiceClient):
    # runs -------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        user_id: str | None = None,
        source: RunSource | Mapping[str, str] | None = None,
        environment: Mapping[str, Any] | None = None,
        datasets: Sequence[Dataset | Mapping[str, Any]] | None = None,
    ) -> Run:
        """Create a RUNNING run. Parameter values are stored as their `str()` and never change."""
        body = present(
            {
                "run_name": run_name,
                "parameters": {k: str(v) for k, v in (parameters or {}).items()},
                "tags": dict(tags or {}),
                "description": description,
                "start_time": start_time,
                "parent_run_id": parent_run_id,
                "user_id": user_id,
                "source": RunSource.model_validate(source).model_dump(exclude_none=True) if source else None,
                "environment": dict(environment) if environment is not None else None,
                "datasets": [Dataset.model_validate(d).model_dump(exclude_none=True) for d in datasets or []],
            }
        )
        response = self.request("POST", f"{experiment_path(experiment_id)}/runs", json=body)
        return Run.model_validate(response.json())

    def get_run(self, experiment_id: str, run_id: str) -> Run:
        return Run.model_validate(self.get_json(run_path(experiment_id, run_id)))

    def update_run(
        self,
        experiment_id: str,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        description: str | None = None,
    ) -> Run:
        """Status goes RUNNING → FINISHED, FAILED or KILLED (end time defaults to now)."""
        body = present(
            {"status": status, "end_time": end_time, "run_name": run_name, "description": description}
        )
        return Run.model_validate(self.request("PATCH", run_path(experiment_id, run_id), json=body).json())

    def end_run(
        self, experiment_id: str, run_id: str, status: str = "FINISHED", *, end_time: int | None = None
    ) -> Run:
        return self.update_run(experiment_id, run_id, status=status, end_time=end_time)

    def delete_run(self, experiment_id: str, run_id: str) -> None:
        self.request("DELETE", run_path(experiment_id, run_id))

    def restore_run(self, experiment_id: str, run_id: str) -> Run:
        response = self.request("POST", f"{run_path(experiment_id, run_id)}/restore", idempotent=True)
        return Run.model_validate(response.json())

    def list_runs(
        self,
        experiment_id: str,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        limit: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Run]:
        """One page of an experiment's runs; `filter` like ``"metrics.auc > 0.9 and params.depth = '6'"``."""
        data = self.get_json(
            f"{experiment_path(experiment_id)}/runs",
            filter=filter,
            order_by=order_by,
            view=view,
            limit=limit,
            page_token=page_token,
        )
        return TokenPage[Run].model_validate(data)

    def iter_runs(self, experiment_id: str, **filters: Any) -> Iterator[Run]:
        return follow(lambda token: self.list_runs(experiment_id, **filters, page_token=token))

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        view: str = "ACTIVE_ONLY",
        max_results: int = 100,
        page_token: str | None = None,
    ) -> TokenPage[Run]:
        """One page of runs across experiments, e.g. ``order_by=["metrics.f1 DESC"]``."""
        body = present(
            {
                "experiment_ids": list(experiment_ids),
                "filter": filter,
                "order_by": list(order_by or []),
                "view": view,
                "max_results": max_results,
                "page_token": page_token,
            }
        )
        # a read-only query sent as a POST: safe to retry
        response = self.request("POST", "/api/runs/search", json=body, idempotent=True)
        return TokenPage[Run].model_validate(response.json())

    def iter_search_runs(self, experiment_ids: Sequence[str], **filters: Any) -> Iterator[Run]:
        return follow(lambda token: self.search_runs(experiment_ids, **filters, page_token=token))

    def best_run(
        self, experiment_id: str, metric: str, *, mode: str = "max", filter: str | None = None
    ) -> Run:
        """The run with the highest (`mode="min"`: lowest) latest value of `metric`."""
        path = f"{experiment_path(experiment_id)}/best-run"
        data = self.get_json(path, metric=metric, mode=mode, filter=filter)
        return Run.model_validate(data)

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Params and latest metrics side by side (runs of any experiments)."""
        return RunComparison.model_validate(self.get_json("/api/runs/compare", run_ids=list(run_ids)))

    # params, tags, metrics --------------------------------------------------------------------
    def log_params(self, experiment_id: str, run_id: str, params: Mapping[str, Any]) -> Run:
        """Log params (stored as `str()`). Re-logging a key with another value is a ConflictError
        PARAM_IMMUTABLE; a batch over 100 is sent in several requests, each all-or-nothing."""
        run: Run | None = None
        for batch in batches(params.items(), PARAMS_PER_REQUEST):
            body = {k: str(v) for k, v in batch}
            response = self.request("POST", f"{run_path(experiment_id, run_id)}/params", json=body)
            run = Run.model_validate(response.json())
        return run or self.get_run(experiment_id, run_id)

    def set_tags(self, experiment_id: str, run_id: str, tags: Mapping[str, str]) -> Run:
        run: Run | None = None
        for batch in batches(tags.items(), PARAMS_PER_REQUEST):
            response = self.request("POST", f"{run_path(experiment_id, run_id)}/tags", json=dict(batch))
            run = Run.model_validate(response.json())
        return run or self.get_run(experiment_id, run_id)

    def delete_tag(self, experiment_id: str, run_id: str, key: str) -> None:
        self.request("DELETE", f"{run_path(experiment_id, run_id)}/tags/{quote_part(key)}")
