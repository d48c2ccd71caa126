"""Client for the A/B testing service (:8090): experiments, routing, events, analysis, rollouts;
and `LocalRouter`, which assigns users in-process from a cached experiment definition."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from mlops_client._base import ServiceClient
from mlops_client.ab_models import (
    AbExperiment,
    Decision,
    EventsResult,
    ExperimentResults,
    Override,
    PowerResult,
)
from mlops_client.ab_routing import Assignment, CompiledExperiment
from mlops_client.config import service_url
from mlops_client.models import Page

log = logging.getLogger("mlops_client.ab_testing")

ROUTE_BATCH = 10_000  # the service's default max_route_batch
EVENTS_PER_REQUEST = 5_000  # well under the service's default limit (100,000), keeps bodies small


def _q(part: str) -> str:
    return quote(part, safe="")


def _exp(experiment: str) -> str:
    return f"/api/experiments/{_q(experiment)}"


def _present(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _when(value: datetime | date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with an `event_id` (so a resent request is de-duplicated) and a timestamp."""
    out = dict(event)
    if not out.get("event_id"):
        out["event_id"] = uuid.uuid4().hex
    out["timestamp"] = _when(out.get("timestamp")) or datetime.now(UTC).isoformat()
    return out


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


class AbTestingClient(ServiceClient):
    """Define experiments, route users to variants, send outcome events, read the analysis.

    >>> with AbTestingClient() as ab:            # MLOPS_AB_TESTING_URL, MLOPS_API_KEY
    ...     ab.create_experiment({"key": "model_v2_test", "model_name": "churn",
    ...         "variants": [{"name": "control", "weight": 0.5, "model_version": "1"},
    ...                      {"name": "treatment", "weight": 0.5, "model_version": "2"}],
    ...         "metrics": [{"name": "conversion", "type": "binary"}],
    ...         "primary_metric": "conversion"})
    ...     ab.start("model_v2_test")
    ...     ab.route("model_v2_test", "user_123").model_version
    ...     ab.track("model_v2_test", "user_123", "conversion", 1)
    ...     ab.results("model_v2_test").metric("conversion")

    For routing without a request per user, `local_router(experiment)` evaluates the service's
    definition in-process with the same code the service runs (`mlops_client.ab_routing`).

    Retried (safe to resend): GETs, PUT/DELETE of overrides, routing (reads), events (each carries
    an `event_id`, generated when missing, and the service ignores ids it has stored) and power
    calculations. Sent once: creating and changing experiments, lifecycle actions, promote.
    """

    def __init__(self, base_url: str | None = None, **kwargs: Any):
        super().__init__(base_url or service_url("ab_testing"), **kwargs)

    # experiments ------------------------------------------------------------------------------
    def create_experiment(
        self, definition: Mapping[str, Any] | None = None, /, **fields: Any
    ) -> AbExperiment:
        """Create a draft experiment from a definition (see the service's API.md: key, variants
        with weights and model versions, metrics, primary/guardrail metrics, coverage, seed,
        namespace, mode and its bandit/canary settings); keyword `fields` are merged over it.
        A ValidationError for a bad definition (weights not summing to 1, fewer than 2
        variants...), a ConflictError EXPERIMENT_EXISTS for a key in use."""
        body = {**dict(definition or {}), **fields}
        return AbExperiment.model_validate(self.request("POST", "/api/experiments", json=body).json())

    def get_experiment(self, experiment: str) -> AbExperiment:
        """An experiment by key or id."""
        return AbExperiment.model_validate(self.get_json(_exp(experiment)))

    def list_experiments(
        self, *, status: str | None = None, mode: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[AbExperiment]:
        """One page, newest first."""
        data = self.get_json("/api/experiments", status=status, mode=mode, limit=limit, offset=offset)
        return Page[AbExperiment].model_validate(data)

    def iter_experiments(self, **filters: Any) -> Iterator[AbExperiment]:
        return _pages(lambda offset: self.list_experiments(**filters, offset=offset))

    def update_experiment(
        self,
        experiment: str,
        *,
        name: str | None = None,
        description: str | None = None,
        hypothesis: str | None = None,
        variants: Sequence[Mapping[str, Any]] | None = None,
        coverage: float | None = None,
        reassign: bool | None = None,
    ) -> AbExperiment:
        """Change the fields given. New variants/weights or coverage on a started experiment open
        a new phase (results are per phase); `reassign=True` also re-seeds it, so users are
        re-randomized. Sent once (a repeat would open another phase)."""
        body = _present(
            {
                "name": name,
                "description": description,
                "hypothesis": hypothesis,
                "variants": [dict(v) for v in variants] if variants is not None else None,
                "coverage": coverage,
                "reassign": reassign,
            }
        )
        return AbExperiment.model_validate(self.request("PATCH", _exp(experiment), json=body).json())

    patch_experiment = update_experiment

    def _lifecycle(self, experiment: str, action: str) -> AbExperiment:
        return AbExperiment.model_validate(self.request("POST", f"{_exp(experiment)}/{action}").json())

    def start(self, experiment: str) -> AbExperiment:
        """draft or paused → running. A ConflictError INVALID_TRANSITION from other states."""
        return self._lifecycle(experiment, "start")

    def pause(self, experiment: str) -> AbExperiment:
        """running → paused: everyone gets the control until it starts again."""
        return self._lifecycle(experiment, "pause")

    def stop(self, experiment: str) -> AbExperiment:
        """draft, running or paused → stopped (for good: everyone gets the control)."""
        return self._lifecycle(experiment, "stop")

    def archive(self, experiment: str) -> AbExperiment:
        """draft or stopped → archived (read-only)."""
        return self._lifecycle(experiment, "archive")

    def definition(self, experiment: str) -> dict[str, Any]:
        """What clients evaluate locally (`mlops_client.ab_routing.evaluate`): key, seed, status,
        phase, coverage, namespace, variants and overrides, as the service answers it."""
        data: dict[str, Any] = self.get_json(f"{_exp(experiment)}/definition")
        return data

    def phases(self, experiment: str) -> list[dict[str, Any]]:
        """Every phase: number, seed, variants, coverage, why it started, start and end times."""
        data = self.get_json(f"{_exp(experiment)}/phases")
        return list(data["items"] if isinstance(data, dict) else data)

    def set_override(self, experiment: str, user_id: str, variant: str) -> Override:
        """Force a user into a variant whatever the hash says (while the experiment runs).
        A ValidationError UNKNOWN_VARIANT for a variant the experiment does not have."""
        path = f"{_exp(experiment)}/overrides/{_q(user_id)}"
        return Override.model_validate(self.request("PUT", path, json={"variant": variant}).json())

    def remove_override(self, experiment: str, user_id: str) -> None:
        self.request("DELETE", f"{_exp(experiment)}/overrides/{_q(user_id)}")

    # routing ----------------------------------------------------------------------------------
    def route(self, experiment: str, user_id: str) -> Assignment:
        """The user's variant and model version (the control's, `in_experiment=False`, when the
        experiment is not running or does not include the user)."""
        data = self.get_json("/api/route", user_id=user_id, experiment=experiment)
        return Assignment.from_dict(data)

    def route_batch(self, experiment: str, user_ids: Iterable[str]) -> list[Assignment]:
        """Assignments of many users, in order (sent 10,000 a request)."""
        users = list(user_ids)
        out: list[Assignment] = []
        for i in range(0, len(users), ROUTE_BATCH):
            body = {"experiment": experiment, "user_ids": users[i : i + ROUTE_BATCH]}
            data = self.request("POST", "/api/route/batch", json=body, idempotent=True).json()
            out.extend(Assignment.from_dict(a) for a in data["assignments"])
        return out

    def local_router(self, experiment: str, **kwargs: Any) -> LocalRouter:
        """A `LocalRouter` over this client (see there for `refresh_seconds`, `background`)."""
        return LocalRouter(self, experiment, **kwargs)

    # events -----------------------------------------------------------------------------------
    def track(
        self,
        experiment: str,
        user_id: str,
        metric: str,
        value: float | None = None,
        *,
        covariate: float | None = None,
        variant: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> EventsResult:
        """Record one outcome (`value`) or pre-period covariate (CUPED) of a user. Without
        `variant` the service counts it for the user's assignment (and not at all when the user
        is not in the experiment). Give your own `event_id` to make your retries idempotent."""
        event = _present(
            {
                "experiment": experiment,
                "user_id": user_id,
                "metric": metric,
                "value": value,
                "covariate": covariate,
                "variant": variant,
                "event_id": event_id,
                "timestamp": timestamp,
            }
        )
        return self.send_events([event])

    def send_events(
        self, events: Iterable[Mapping[str, Any]], *, batch_size: int = EVENTS_PER_REQUEST
    ) -> EventsResult:
        """Send events (``{"experiment", "user_id", "metric", "value" or "covariate", ...}``),
        `batch_size` per request, each request all or nothing; the counts are summed.

        Events without an `event_id` get one (and a timestamp) before the first request, so a
        request resent after a lost answer is de-duplicated by the service. Those ids live only
        for this call: to retry a failed call yourself without counting events twice, give the
        events ids of your own."""
        prepared = [_event(e) for e in events]
        total = EventsResult()
        for i in range(0, len(prepared), max(1, batch_size)):
            body = {"events": prepared[i : i + batch_size]}
            answer = EventsResult.model_validate(
                self.request("POST", "/api/events", json=body, idempotent=True).json()
            )
            total = EventsResult(
                accepted=total.accepted + answer.accepted,
                duplicates=total.duplicates + answer.duplicates,
                not_in_experiment=total.not_in_experiment + answer.not_in_experiment,
            )
        return total

    # analysis ---------------------------------------------------------------------------------
    def results(
        self,
        experiment: str,
        *,
        phase: int | None = None,
        method: str | None = None,
        sequential: bool | None = None,
        mann_whitney: bool | None = None,
    ) -> ExperimentResults:
        """Per metric, every variant against the control: counts, means, absolute and relative
        lift with intervals, the test's p-value and its correction across metrics x variants
        (`method` "holm", the default, or "bh"), the sequential (always-valid) p-value and
        confidence sequence, Bayesian chance to win and expected loss, CUPED figures when
        covariates were sent, Mann-Whitney on request; and the sample-ratio-mismatch check.
        `phase` defaults to the current one."""
        data = self.get_json(
            f"{_exp(experiment)}/results",
            phase=phase,
            method=method,
            sequential=_bool(sequential),
            mann_whitney=_bool(mann_whitney),
        )
        return ExperimentResults.model_validate(data)

    def power(
        self,
        experiment: str | None = None,
        *,
        baseline: float,
        mde: float | None = None,
        n_per_variant: int | None = None,
        std: float | None = None,
        metric: str | None = None,
        metric_type: str | None = None,
        relative: bool | None = None,
        alpha: float | None = None,
        power: float | None = None,
        variants: int | None = None,
    ) -> PowerResult:
        """The sample size per variant needed to detect `mde` (relative unless
        ``relative=False``), and/or the effect `n_per_variant` users can detect, from the control's
        expected mean `baseline` (a rate for binary metrics; continuous and ratio metrics also
        need the per-user `std`).

        With `experiment`, its metric (`metric`, default the primary), type, significance level,
        power, number of variants and MDE are used; without it, give `metric_type` ("binary" by
        default), `alpha`, `power`, `variants` as needed. A read: retried."""
        if experiment is not None:
            params = {
                "baseline": baseline,
                "mde": mde,
                "n_per_variant": n_per_variant,
                "std": std,
                "metric": metric,
            }
            return PowerResult.model_validate(self.get_json(f"{_exp(experiment)}/power", **params))
        body = _present(
            {
                "metric_type": metric_type,
                "baseline_mean": baseline,
                "std": std,
                "mde": mde,
                "relative": relative,
                "n_per_variant": n_per_variant,
                "alpha": alpha,
                "power": power,
                "variants": variants,
            }
        )
        response = self.request("POST", "/api/power", json=body, idempotent=True)
        return PowerResult.model_validate(response.json())

    def list_decisions(
        self, experiment: str, *, kind: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page[Decision]:
        data = self.get_json(f"{_exp(experiment)}/decisions", kind=kind, limit=limit, offset=offset)
        return Page[Decision].model_validate(data)

    def decisions(self, experiment: str, *, kind: str | None = None) -> list[Decision]:
        """Every bandit re-weighting, canary advance/rollback and promotion, with its evidence,
        oldest first."""
        return list(_pages(lambda offset: self.list_decisions(experiment, kind=kind, offset=offset)))

    def promote(
        self,
        experiment: str,
        variant: str | None = None,
        *,
        alias: str = "production",
        test: str | None = None,
    ) -> Decision:
        """Point the registry `alias` of the experiment's model at a variant's model version:
        `variant`, or the best variant significantly better than the control on the primary
        metric (by the sequential p-value, or the fixed-horizon one with ``test="fixed"``).
        Answers the recorded decision (its details: the variant, the evidence, the registry
        move). A ConflictError NO_WINNER (details: the evidence) when no variant is significantly
        better; a ValidationError NO_MODEL_NAME / NO_MODEL_VERSION / REGISTRY_REJECTED; a
        ServiceUnavailableError REGISTRY_UNAVAILABLE. Sent once."""
        body = _present({"variant": variant, "alias": alias, "test": test})
        response = self.request("POST", f"{_exp(experiment)}/promote", json=body)
        return Decision.model_validate(response.json())

    def evaluate_rollout(self, experiment: str) -> dict[str, Any]:
        """Run the rollout controller's check of a bandit or canary now (what the service does
        every `controller_interval_seconds`): the figures and the decisions recorded. A
        ConflictError NOT_A_ROLLOUT for an "ab" experiment. Sent once."""
        data: dict[str, Any] = self.request("POST", f"{_exp(experiment)}/evaluate").json()
        return data


def _pages(fetch: Callable[[int], Page[Any]]) -> Iterator[Any]:
    offset: int | None = 0
    while offset is not None:
        page = fetch(offset)
        yield from page.items
        offset = page.next_offset


class LocalRouter:
    """Assign users in-process: no request per user, the same answer as `GET /api/route`.

    The experiment's definition is fetched when the router is created (errors are raised then)
    and refreshed every `refresh_seconds`:

    - ``background=True`` (default): by a daemon thread, so `assign` never waits for the network;
    - ``background=False``: lazily, by the first `assign` after the definition went stale (that
      call waits for the fetch).

    A failed refresh keeps the last definition (routing continues; `last_error` holds the error
    and the next refresh tries again), so a service outage never stops assignment, at the cost of
    serving a definition up to the outage's length old. `on_assign(assignment)`, if given, is
    called after every assignment (e.g. to log exposures to your own analytics).

    The service learns about users only from their events here (it records a user as exposed on
    their first event); users routed locally who send no events do not count as exposed.

    >>> with AbTestingClient() as ab, LocalRouter(ab, "model_v2_test") as router:
    ...     router.assign("user_123").model_version
    """

    def __init__(
        self,
        client: AbTestingClient,
        experiment: str,
        refresh_seconds: float = 30.0,
        *,
        background: bool = True,
        on_assign: Callable[[Assignment], None] | None = None,
    ):
        if refresh_seconds <= 0:
            raise ValueError("refresh_seconds must be positive")
        self.client = client
        self.experiment = experiment
        self.refresh_seconds = refresh_seconds
        self.on_assign = on_assign
        self.last_error: Exception | None = None
        self.fetched_at = 0.0
        """`time.monotonic()` of the last successful fetch."""
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._compiled = self._fetch()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._refresh_loop, name=f"ab-router-{experiment}", daemon=True
            )
            self._thread.start()

    def _fetch(self) -> CompiledExperiment:
        compiled = CompiledExperiment(self.client.definition(self.experiment))
        self.fetched_at = self._checked_at = time.monotonic()
        return compiled

    @property
    def definition(self) -> Mapping[str, Any]:
        """The definition in use."""
        return self._compiled.definition

    @property
    def stale(self) -> bool:
        """Whether a refresh is due (`refresh_seconds` since the last attempt)."""
        return time.monotonic() - self._checked_at >= self.refresh_seconds

    def refresh(self) -> bool:
        """Fetch the definition now; False (and `last_error` set) when that failed."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> bool:
        try:
            self._compiled = self._fetch()
        except Exception as exc:  # keep routing with the last definition
            self.last_error = exc
            self._checked_at = time.monotonic()  # try again after another period
            log.warning("could not refresh experiment %s: %r", self.experiment, exc)
            return False
        self.last_error = None
        return True

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def assign(self, user_id: str) -> Assignment:
        """The user's assignment under the cached definition (`mlops_client.ab_routing`)."""
        # lazily: one caller refreshes, the others keep routing with the definition they have
        if self._thread is None and self.stale and self._lock.acquire(blocking=False):
            try:
                if self.stale:
                    self._refresh()
            finally:
                self._lock.release()
        assignment = self._compiled.evaluate(user_id)
        if self.on_assign is not None:
            self.on_assign(assignment)
        return assignment

    def close(self) -> None:
        """Stop the background refresh (the client stays open)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
