"""One prediction request, whatever protocol it came in: features looked up, rows assigned to the
experiment's variants, scored by the version each variant is served by, logged to monitoring,
exposures queued, and the shadow candidate fed off the request path.

Framework-free: the routers decode and encode; this module raises domain errors only."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from mlops_client import MonitoringClient

from model_serving.errors import DeploymentFailed, InvalidInput, ModelNotLoaded
from model_serving.loading import InputMismatch, Prediction
from model_serving.protocols import Inputs
from model_serving.runtime.exposures import ExposureSender
from model_serving.runtime.features import FeatureLookup
from model_serving.runtime.state import Live, Slot

log = logging.getLogger("mlops.model_serving.predict")
INLINE_ROWS = 64  # smaller batches are scored on the event loop (a thread hop costs more than them)


@dataclass(frozen=True)
class Scored:
    """Row `i` of the answer: what was predicted, by which version, for which variant."""

    prediction: Any
    probability: list[float] | None
    version: str
    variant: str | None
    experiment: str | None
    request_id: str


@dataclass
class Answer:
    deployment: str
    model: str
    rows: list[Scored]
    timestamp: datetime
    classes: list[Any] | None
    single: bool = False


@dataclass(frozen=True)
class Origin:
    """What an outcome event for a request id is counted against."""

    experiment: str
    user_id: str
    variant: str | None


class Origins:
    """request id -> (experiment, user, variant) of recent predictions, bounded (an LRU)."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self._items: OrderedDict[str, Origin] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, request_id: str, origin: Origin) -> None:
        with self._lock:
            self._items[request_id] = origin
            if len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, request_id: str) -> Origin | None:
        with self._lock:
            return self._items.get(request_id)


class Shadow:
    """Scores requests with a deployment's shadow candidate in one background thread, from a
    bounded queue (full: the oldest waiting request is dropped and counted)."""

    def __init__(
        self, record: Callable[[Live, Slot, list[str] | None, list[list[Any]], list[str]], None], size: int
    ) -> None:
        self.record = record
        self._queue: deque[tuple[Live, Slot, list[str] | None, list[list[Any]], list[str]]] = deque(
            maxlen=size
        )
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = self.scored = self.failed = 0

    def submit(
        self, live: Live, slot: Slot, columns: list[str] | None, rows: list[list[Any]], ids: list[str]
    ) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((live, slot, columns, rows, ids))
        self._ready.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serving-shadow", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            while self._queue:
                item = self._queue.popleft()
                try:
                    self.record(*item)
                    self.scored += 1
                except Exception:  # a shadow failure never reaches a caller; it is counted
                    self.failed += 1
                    log.exception("shadow prediction failed")

    def depth(self) -> int:
        return len(self._queue)


def _named(columns: list[str] | None, names: tuple[str, ...] | None, row: list[Any]) -> dict[str, Any]:
    keys = columns or names or [f"feature_{i}" for i in range(len(row))]
    return dict(zip(keys, row, strict=False))


def _probability(p: list[float] | None) -> float | list[float] | None:
    """What the prediction log stores: the positive class's probability for two classes."""
    if p is None:
        return None
    return p[1] if len(p) == 2 else p


class Predictor:
    def __init__(
        self,
        monitoring: MonitoringClient | None,
        exposures: ExposureSender | None,
        features: FeatureLookup | None,
        shadow_queue: int,
    ) -> None:
        self.monitoring, self.exposures, self.features = monitoring, exposures, features
        self.origins = Origins()
        self.shadow = Shadow(self._shadow_record, shadow_queue)
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:12]
        self.model_seconds: Callable[[Live, str, float], None] = lambda live, version, seconds: None
        self.counted: Callable[[Live, Scored], None] = lambda live, scored: None

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids):x}"

    # ---- the request -------------------------------------------------------------------------
    async def predict(self, live: Live, inputs: Inputs) -> Answer:
        current = live.current
        if current is None and live.state == "FAILED":
            raise DeploymentFailed(
                f"deployment {live.spec.name!r} has no model to serve: {live.last_error}",
                {"deployment": live.spec.name, "failed_version": live.failed_version},
            )
        if current is None:
            raise ModelNotLoaded(
                f"deployment {live.spec.name!r} has no model loaded yet"
                + (f" ({live.last_error})" if live.last_error else ""),
                {"deployment": live.spec.name, "state": live.state},
            )
        columns, rows = await self._with_features(live, inputs)
        ids = self._request_ids(inputs.request_ids, len(rows))
        groups = self._assign(live, current, inputs)
        scored: list[Scored | None] = [None] * len(rows)
        classes: list[Any] | None = None
        for (slot, variant, experiment), members in groups.items():
            part = rows if len(members) == len(rows) else [rows[i] for i in members]
            prediction = await self._score(live, slot, columns, part)
            classes = prediction.classes
            for j, i in enumerate(members):
                probs = prediction.probabilities[j] if prediction.probabilities is not None else None
                scored[i] = Scored(
                    prediction.predictions[j], probs, slot.version, variant, experiment, ids[i]
                )
        done = [s for s in scored if s is not None]
        self._after(live, current, columns, rows, done, inputs)
        return Answer(live.spec.name, live.spec.model, done, datetime.now(UTC), classes, inputs.single)

    def _request_ids(self, given: list[str | None], n: int) -> list[str]:
        """One id per row: the request's (a batch given one id numbers its rows), else new ones."""
        if len(given) != n:
            return [self.new_id() for _ in range(n)]
        ids = [rid or self.new_id() for rid in given]
        if n > 1 and len(set(ids)) < n:
            ids = [f"{rid}-{i}" for i, rid in enumerate(ids)]
        return ids

    async def _with_features(self, live: Live, inputs: Inputs) -> tuple[list[str] | None, list[list[Any]]]:
        service = live.spec.feature_service
        if service is None or self.features is None:
            return inputs.columns, inputs.rows
        entities = [{k: v for k, v in e.items() if k != "request_id"} for e in inputs.entity]
        if not entities or any(not e for e in entities):
            raise InvalidInput(
                f"deployment {live.spec.name!r} looks up features from {service!r}: give the entity keys "
                "of every row (`entities`)",
                {"feature_service": service},
            )
        looked_up = await self.features.values(service, entities)
        if inputs.columns is None and any(inputs.rows):
            raise InvalidInput(
                "a deployment with a feature service merges request features by name: send named "
                "inputs (`inputs` or `instances` as objects)",
                {"feature_service": service},
            )
        names = list(dict.fromkeys([*(k for v in looked_up for k in v), *(inputs.columns or [])]))
        merged: list[list[Any]] = []
        for i, values in enumerate(looked_up):
            row = dict(values)
            if inputs.columns:
                row.update(zip(inputs.columns, inputs.rows[i], strict=False))  # request values win
            merged.append([row.get(n) for n in names])
        return names, merged

    def _assign(
        self, live: Live, current: Slot, inputs: Inputs
    ) -> dict[tuple[Slot, str | None, str | None], list[int]]:
        routing = live.routing
        groups: dict[tuple[Slot, str | None, str | None], list[int]] = {}
        n = len(inputs.rows)
        if routing is None:
            groups[(current, None, None)] = list(range(n))
            return groups
        experiment = routing.experiment
        for i in range(n):
            user = inputs.entity[i].get("user_id") if i < len(inputs.entity) else None
            if user is None:
                groups.setdefault((current, None, None), []).append(i)
                continue
            a = experiment.evaluate(str(user))
            slot = routing.variants.get(a.model_version, current) if a.model_version else current
            groups.setdefault((slot, a.variant, experiment.key), []).append(i)
            if a.in_experiment and self.exposures is not None:
                self.exposures.add(experiment.key, a.user_id)
        return groups

    async def _score(
        self, live: Live, slot: Slot, columns: list[str] | None, rows: list[list[Any]]
    ) -> Prediction:
        started = time.perf_counter()
        try:
            if len(rows) <= INLINE_ROWS:
                prediction = slot.loaded.predict(columns, rows)
            else:
                prediction = await anyio.to_thread.run_sync(slot.loaded.predict, columns, rows)
        except InputMismatch as exc:
            raise InvalidInput(str(exc), {"expected": exc.expected, "version": slot.version}) from None
        self.model_seconds(live, slot.version, time.perf_counter() - started)
        return prediction

    # ---- after the answer is made --------------------------------------------------------------
    def _after(
        self,
        live: Live,
        current: Slot,
        columns: list[str] | None,
        rows: list[list[Any]],
        done: list[Scored],
        inputs: Inputs,
    ) -> None:
        names = current.loaded.signature.names
        for i, s in enumerate(done):
            self.counted(live, s)
            if s.experiment is not None:
                user = inputs.entity[i].get("user_id")
                self.origins.add(s.request_id, Origin(s.experiment, str(user), s.variant))
            if live.spec.monitoring and self.monitoring is not None:
                self.monitoring.log_prediction(
                    live.spec.model,
                    _named(columns, names, rows[i]),
                    s.prediction,
                    version=s.version,
                    probability=_probability(s.probability),
                    request_id=s.request_id,
                    variant=s.variant,
                )
        shadow = live.shadow
        if shadow is not None and shadow is not current:
            self.shadow.submit(live, shadow, columns, rows, [s.request_id for s in done])

    def _shadow_record(
        self, live: Live, slot: Slot, columns: list[str] | None, rows: list[list[Any]], ids: list[str]
    ) -> None:
        prediction = slot.loaded.predict(columns, rows)
        if self.monitoring is None:
            return
        names = slot.loaded.signature.names
        for j, row in enumerate(rows):
            probs = prediction.probabilities[j] if prediction.probabilities is not None else None
            self.monitoring.log_prediction(
                live.spec.model,
                _named(columns, names, row),
                prediction.predictions[j],
                version=slot.version,
                probability=_probability(probs),
                request_id=f"shadow-{ids[j]}",
                variant="shadow",
            )
