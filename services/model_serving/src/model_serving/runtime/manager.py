"""Keeps a replica's loaded models in step with the deployments, the registry's aliases and the
A/B experiments, in one background loop (a worker thread, never the request path).

Each pass: read the deployments (a small table), ask the registry whether any alias or stage
moved (one conditional request for every model, a 304 when nothing did), refresh the
experiments that route the deployments' traffic now and then, load what is wanted and not
loaded (beside the old version: a swap is one assignment once the new one is warm), and drop
what nothing uses. A registry or A/B service that is down leaves everything loaded serving; a
version that fails to load leaves its deployment FAILED with the reason, the previous version
still serving, and is tried again with back-off.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_client import AbTestingClient, MlopsError, NotFoundError, RegistryClient
from mlops_client.ab_routing import CompiledExperiment

from model_serving.loading import ModelLoadError, load_model
from model_serving.runtime import artifacts
from model_serving.runtime.state import Live, Ref, Routing, Slot, Spec

log = logging.getLogger("mlops.model_serving.runtime")
Key = tuple[str, str]  # (model, version)


@dataclass
class _Failure:
    error: str
    attempts: int
    retry_at: float


@dataclass
class Refs:
    """The registry's aliases and stages of the deployed models, and the ETag of that answer."""

    aliases: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, alias) -> version
    stages: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, Stage) -> version
    etag: str | None = None
    models: tuple[str, ...] = ()
    fetched: bool = False


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version))


class Runtime:
    """The deployments this replica serves (`live`), kept current by `run_once`."""

    def __init__(
        self,
        read_specs: Callable[[], list[Spec]],
        registry: RegistryClient,
        ab: AbTestingClient | None,
        cache: Path,
        *,
        experiments_every: float = 30.0,
        retry_max: float = 30.0,
        on_swap: Callable[[Live, Slot | None, Slot], None] | None = None,
    ) -> None:
        self.read_specs, self.registry, self.ab, self.cache = read_specs, registry, ab, cache
        self.experiments_every, self.retry_max, self.on_swap = experiments_every, retry_max, on_swap
        self.live: dict[str, Live] = {}
        self.order: list[str] = []  # deployment names, oldest first (the default is the first)
        self.slots: dict[Key, Slot] = {}
        self.refs = Refs()
        self.registry_error: str | None = None
        self._failures: dict[Key, _Failure] = {}
        self._experiments_at = 0.0
        self._experiments: dict[str, CompiledExperiment | None] = {}  # deployment -> experiment
        self._lock = threading.Lock()  # one pass at a time (the loop, or a request's nudge)

    # ---- the pass ------------------------------------------------------------------------------
    def run_once(self) -> None:
        with self._lock:
            self._sync_specs(self.read_specs())
            self._sync_refs()
            self._sync_experiments()
            for live in list(self.live.values()):
                self._serve(live)
            self._drop_unused()

    def _sync_specs(self, specs: list[Spec]) -> None:
        fresh: dict[str, Live] = {}
        for spec in specs:
            live = self.live.get(spec.name) or Live(spec)
            if live.spec != spec:
                live.spec = spec
            fresh[spec.name] = live
        self.live = fresh
        self.order = [s.name for s in specs]

    def _sync_refs(self) -> None:
        models = tuple(sorted({live.spec.model for live in self.live.values()}))
        if not models:
            self.refs = Refs()
            return
        etag = self.refs.etag if models == self.refs.models else None
        try:
            state = self.registry.alias_state(list(models), etag=etag)
        except MlopsError as exc:
            self.registry_error = str(exc)
            log.warning("registry unavailable, serving what is loaded: %s", exc)
            return
        self.registry_error = None
        if state is None:  # 304: nothing moved
            return
        refs = Refs(etag=state.etag, models=models, fetched=True)
        for a in state.aliases:
            refs.aliases[(a.name, a.alias)] = a.version
        for s in sorted(state.stages, key=lambda s: _version_key(s.version)):
            refs.stages[(s.name, s.stage)] = s.version  # the highest version in a stage wins
        self.refs = refs

    def resolve(self, model: str, ref: Ref) -> str | None:
        kind, value = ref
        if kind == "version":
            return value
        if not self.refs.fetched:
            return None
        table = self.refs.aliases if kind == "alias" else self.refs.stages
        return table.get((model, value))

    # ---- experiments ---------------------------------------------------------------------------
    def _sync_experiments(self) -> None:
        if self.ab is None or time.monotonic() - self._experiments_at < self.experiments_every:
            self._apply_experiments()
            return
        try:
            self._experiments = self._fetch_experiments()
            self._experiments_at = time.monotonic()
        except MlopsError as exc:  # keep routing with the definitions we have
            log.warning("A/B testing unavailable, routing with the last definitions: %s", exc)
            self._experiments_at = time.monotonic()
        self._apply_experiments()

    def _fetch_experiments(self) -> dict[str, CompiledExperiment | None]:
        assert self.ab is not None
        wanted = {live.spec.model for live in self.live.values() if live.spec.experiment is None}
        running: dict[str, str] = {}
        if wanted:
            for exp in self.ab.iter_experiments(status="running"):
                if exp.model_name in wanted and exp.model_name not in running:
                    running[exp.model_name] = exp.key  # newest first: the newest running one routes
        found: dict[str, CompiledExperiment | None] = {}
        definitions: dict[str, CompiledExperiment] = {}
        for name, live in self.live.items():
            key = live.spec.experiment or running.get(live.spec.model)
            if key is None:
                found[name] = None
                continue
            if key not in definitions:
                try:
                    definitions[key] = CompiledExperiment(self.ab.definition(key))
                except NotFoundError:
                    log.warning("deployment %s names experiment %r, which does not exist", name, key)
                    found[name] = None
                    continue
            found[name] = definitions[key]
        return found

    def _apply_experiments(self) -> None:
        for name, live in self.live.items():
            experiment = self._experiments.get(name)
            live.wanted_experiment = experiment if experiment is not None and experiment.running else None

    # ---- loading and swapping ------------------------------------------------------------------
    def _wanted(self, live: Live) -> tuple[str | None, list[str], str | None]:
        spec = live.spec
        target = self.resolve(spec.model, spec.target)
        variants: list[str] = []
        if live.wanted_experiment is not None:
            for variant in live.wanted_experiment.definition.get("variants") or []:
                version = variant.get("model_version")
                if isinstance(version, str) and version:
                    variants.append(version)
        shadow = self.resolve(spec.model, spec.shadow) if spec.shadow else None
        return target, variants, shadow

    def _serve(self, live: Live) -> None:
        target, variants, shadow = self._wanted(live)
        live.target_version = target
        if target is not None:
            slot = self._slot(live.spec.model, target, live)
            if slot is not None:
                if live.current is not slot:
                    self._swap(live, slot)
                live.state, live.last_error, live.failed_version = "READY", None, None
        elif self.refs.fetched and live.spec.target[0] != "version":
            kind, value = live.spec.target
            self._failed(live, "", f"model {live.spec.model!r} has no {kind} {value!r} in the registry")
        elif live.current is None:
            live.state = "PENDING"
        loaded = {v: s for v in variants if (s := self._slot(live.spec.model, v, None)) is not None}
        if loaded != live.variants:
            live.variants = loaded
        self._route(live, loaded, variants)
        live.shadow = self._slot(live.spec.model, shadow, None) if shadow else None

    @staticmethod
    def _route(live: Live, loaded: dict[str, Slot], variants: list[str]) -> None:
        """Route by the wanted experiment once every variant's version is loaded (and the
        deployment serves something for variants without a version); until then, none."""
        wanted = live.wanted_experiment
        ready = wanted is not None and live.current is not None and all(v in loaded for v in variants)
        if not ready or wanted is None:
            live.routing = None
        elif live.routing is None or live.routing.experiment is not wanted or live.routing.variants != loaded:
            live.routing = Routing(wanted, dict(loaded))

    def _swap(self, live: Live, slot: Slot) -> None:
        previous, live.current = live.current, slot
        was = previous.version if previous else None
        log.info("%s serves %s %s (was %s)", live.spec.name, slot.model, slot.version, was)
        if self.on_swap is not None:
            self.on_swap(live, previous, slot)

    def _slot(self, model: str, version: str, live: Live | None) -> Slot | None:
        key = (model, version)
        slot = self.slots.get(key)
        if slot is not None:
            return slot
        failure = self._failures.get(key)
        if failure is not None and time.monotonic() < failure.retry_at:
            if live is not None:
                self._failed(live, version, failure.error)
            return None
        if live is not None and live.current is None:
            live.state = "LOADING"
        try:
            slot = self._load(model, version)
        except (ModelLoadError, MlopsError, OSError) as exc:
            attempts = failure.attempts + 1 if failure else 1
            error = f"{type(exc).__name__}: {exc}"
            delay = min(self.retry_max, 0.5 * 2 ** (attempts - 1))
            self._failures[key] = _Failure(error, attempts, time.monotonic() + delay)
            log.warning(
                "loading %s %s failed (attempt %d, next in %.1f s): %s",
                model,
                version,
                attempts,
                delay,
                error,
            )
            if live is not None:
                self._failed(live, version, error)
            return None
        self._failures.pop(key, None)
        self.slots[key] = slot
        return slot

    @staticmethod
    def _failed(live: Live, version: str, error: str) -> None:
        live.last_error, live.failed_version = error, version
        live.state = "FAILED"

    def _load(self, model: str, version: str) -> Slot:
        started = time.perf_counter()
        directory = artifacts.fetch(self.registry, self.cache, model, version)
        loaded = load_model(directory)
        loaded.warm()
        return Slot(model, version, loaded, datetime.now(UTC), time.perf_counter() - started)

    def _drop_unused(self) -> None:
        used: set[int] = set()
        for live in self.live.values():
            for slot in (live.current, live.shadow, *live.variants.values()):
                if slot is not None:
                    used.add(id(slot))
        for key, slot in list(self.slots.items()):
            if id(slot) not in used:
                del self.slots[key]
        for key in [k for k in self._failures if k[0] not in {lv.spec.model for lv in self.live.values()}]:
            del self._failures[key]

    # ---- reading -------------------------------------------------------------------------------
    def get(self, name: str | None, default: str | None = None) -> Live | None:
        if name is None:
            name = default if default is not None else (self.order[0] if self.order else None)
            if name is None:
                return None
        return self.live.get(name)

    def ready(self) -> bool:
        """Every deployment has a version loaded or has failed (a replica still loading, or one
        that cannot reach the registry to learn what to load, is not ready)."""
        return all(lv.current is not None or lv.state == "FAILED" for lv in self.live.values())

    def with_spec(self, spec: Spec) -> None:
        """Serve a deployment created or changed by this replica's request without waiting for the
        next pass to read it (the pass itself loads it)."""
        live = self.live.get(spec.name)
        if live is None:
            self.live[spec.name] = Live(spec)
            self.order.append(spec.name)
        else:
            live.spec = replace(spec)

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            self.live.pop(name, None)
            if name in self.order:
                self.order.remove(name)
