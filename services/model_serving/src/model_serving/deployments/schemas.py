"""Deployment bodies and answers (the suffixes every service uses: Create, Update, Read, Page)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strict = ConfigDict(extra="forbid")
DeploymentName = Annotated[
    str, Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="deployment name")
]
ModelName = Annotated[
    str, Field(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="registered model")
]
AliasName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
VersionText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")]
ShortKey = Annotated[str, Field(max_length=64)]
StageName = Literal["Staging", "Production", "staging", "production"]
ServiceName = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
]
ExperimentKey = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
]


class Shadow(BaseModel):
    """A candidate that scores every request off the request path; its predictions are logged
    (with its own version) and never returned."""

    model_config = Strict
    alias: AliasName | None = None
    version: VersionText | None = None

    @model_validator(mode="after")
    def _one(self) -> Shadow:
        if (self.alias is None) == (self.version is None):
            raise ValueError("give exactly one of alias or version")
        return self


class Replicas(BaseModel):
    """Hints for the autoscaler (the HPA in deployment/k8s); every replica serves every deployment."""

    model_config = Strict
    min: int = Field(default=1, ge=1, le=1000)
    max: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        if self.max < self.min:
            raise ValueError("max must be at least min")
        return self


class Target(BaseModel):
    """Which version a deployment serves: the one an alias or stage points at (followed as it
    moves), or a pinned version. None of them: the `production` alias."""

    model_config = Strict
    alias: AliasName | None = None
    version: VersionText | None = None
    stage: StageName | None = None

    @model_validator(mode="after")
    def _at_most_one(self) -> Target:
        if sum(v is not None for v in (self.alias, self.version, self.stage)) > 1:
            raise ValueError("give at most one of alias, version and stage")
        return self


class DeploymentCreate(Target):
    name: DeploymentName
    model: ModelName
    feature_service: ServiceName | None = Field(
        default=None, description="online features looked up by the request's entity keys"
    )
    experiment: ExperimentKey | None = Field(
        default=None,
        description="the A/B experiment or canary that routes this deployment's traffic "
        "(default: any running experiment of the model)",
    )
    monitoring: bool = Field(default=True, description="log every prediction to model monitoring")
    shadow: Shadow | None = None
    replicas: Replicas = Field(default_factory=Replicas)


class DeploymentUpdate(Target):
    """Only the fields given change (a target given replaces the old target)."""

    feature_service: ServiceName | None = None
    experiment: ExperimentKey | None = None
    monitoring: bool | None = None
    shadow: Shadow | None = None
    replicas: Replicas | None = None


class LegacyDeploy(BaseModel):
    """The orchestration document's `DeploymentConfig` (`POST /api/v1/deployment/deploy`)."""

    model_config = ConfigDict(extra="ignore")
    model_name: ModelName
    model_version: VersionText | None = None
    strategy: Annotated[str, Field(max_length=32)] | None = None
    environment: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] | None = None
    canary_config: Annotated[dict[Annotated[str, Field(max_length=64)], Any], Field(max_length=50)] | None = (
        None
    )
    instance_count: int | None = Field(default=None, ge=1, le=1000)
    min_instances: int | None = Field(default=None, ge=1, le=1000)
    max_instances: int | None = Field(default=None, ge=1, le=1000)


class LoadedVersion(BaseModel):
    version: str
    loaded_at: datetime
    load_seconds: float
    flavor: str


class DeploymentStatus(BaseModel):
    """What the replica that answered has loaded (each replica loads every deployment)."""

    state: Literal["PENDING", "LOADING", "READY", "FAILED"]
    target_version: str | None
    loaded: LoadedVersion | None
    last_error: str | None
    failed_version: str | None
    variants: dict[str, str] = Field(description="A/B variant -> the version it is served by")
    experiment: str | None = Field(
        None, description="the A/B experiment or canary that covers the deployment (running)"
    )
    experiment_waiting_for: list[str] = Field(
        default_factory=list,
        description="its variants' versions not loaded yet: until they are, requests are not "
        "assigned to variants (served by the deployment's own version, no exposure counted)",
    )
    shadow_version: str | None
    replica: str


class DeploymentRead(BaseModel):
    name: str
    model: str
    alias: str | None
    version: str | None
    stage: str | None
    feature_service: str | None
    experiment: str | None
    monitoring: bool
    shadow: Shadow | None
    replicas: Replicas
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    status: DeploymentStatus


class DeploymentPage(BaseModel):
    items: list[DeploymentRead]
    total: int
    limit: int
    offset: int
    next_offset: int | None
