"""What one replica serves: each deployment's spec and the loaded versions its requests use.

The request path reads `Live` attributes without a lock: every change is one attribute
assignment of an immutable value (a `Slot`, a dict built aside, a compiled experiment), so a
request sees the old version or the new one, never a half-made state, and a request that holds
a slot finishes on it even when the deployment has moved on (hot swap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from mlops_client.ab_routing import CompiledExperiment

from model_serving.loading import LoadedModel

State = Literal["PENDING", "LOADING", "READY", "FAILED"]
Ref = tuple[Literal["alias", "version", "stage"], str]


@dataclass(frozen=True)
class Spec:
    """A deployment as stored (what every replica serves)."""

    name: str
    model: str
    alias: str | None
    version: str | None
    stage: str | None
    feature_service: str | None
    experiment: str | None
    monitoring: bool
    shadow_alias: str | None
    shadow_version: str | None

    @property
    def target(self) -> Ref:
        if self.version is not None:
            return ("version", self.version)
        if self.stage is not None:
            return ("stage", self.stage.capitalize())
        return ("alias", self.alias or "production")

    @property
    def shadow(self) -> Ref | None:
        if self.shadow_version is not None:
            return ("version", self.shadow_version)
        if self.shadow_alias is not None:
            return ("alias", self.shadow_alias)
        return None


@dataclass(frozen=True)
class Slot:
    """One loaded version of a model (shared by every deployment and variant that serves it)."""

    model: str
    version: str
    loaded: LoadedModel
    loaded_at: datetime
    load_seconds: float


@dataclass(frozen=True)
class Routing:
    """The experiment that routes a deployment's requests, with its variants' loaded versions."""

    experiment: CompiledExperiment
    variants: dict[str, Slot]  # model version -> slot


@dataclass
class Live:
    """A deployment on this replica."""

    spec: Spec
    current: Slot | None = None
    target_version: str | None = None
    state: State = "PENDING"
    last_error: str | None = None
    failed_version: str | None = None
    wanted_experiment: CompiledExperiment | None = None  # what A/B testing says routes it
    variants: dict[str, Slot] = field(default_factory=dict)  # model version -> slot (loaded ones)
    # the experiment that routes requests and its variants' slots, set in one step and only once
    # every variant's version is loaded: a request never sees an experiment without its versions
    # (assigning a user to a variant whose version is still loading would serve, and count, the
    # wrong model under that variant's name)
    routing: Routing | None = None
    shadow: Slot | None = None
