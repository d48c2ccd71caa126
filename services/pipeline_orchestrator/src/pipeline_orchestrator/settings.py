from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from mlops_kit.settings import PLACEHOLDER_SECRETS, ServiceSettings
from pydantic import Field, SecretStr, field_validator


class OrchestratorSettings(ServiceSettings):
    service_name: ClassVar[str] = "pipeline_orchestrator"
    default_port: ClassVar[int] = 8004

    executor: Literal["local", "celery", "kubernetes"] = Field(
        default="local",
        description="local: worker processes on this machine; celery: workers on any machine through "
        "the Redis broker; kubernetes: one Job per task attempt",
    )
    workers: int = Field(default=4, ge=1, description="local executor: concurrent worker processes")
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a running attempt whose worker has not been heard of for this "
        "long is declared lost and retried",
    )
    remote_queue_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="celery/kubernetes: how long a submitted attempt may wait for a free worker before it "
        "is declared lost and submitted again (its lease starts when a worker picks it up)",
    )
    max_lost_retries: int = Field(
        default=3, ge=0, description="retries of an attempt lost with its worker, on top of the task's own"
    )
    scheduler_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often schedules, leases and retry timers are checked"
    )
    public_url: str | None = Field(
        default=None,
        description="how remote workers (celery, kubernetes) reach this service; defaults to "
        "http://127.0.0.1:<port>",
    )

    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "mlops-pipelines"
    celery_broker_timeout_seconds: float = Field(
        default=5.0,
        ge=2.0,  # above the workers' 1 s BRPOP wait, which shares this socket timeout
        description="connect and socket timeout of every broker (Redis) call; a frozen broker fails a "
        "submission in about 3x this (a reconnect and one retry): the attempt fails, the engine goes on",
    )

    k8s_namespace: str = "mlops-platform"
    k8s_image: str = "mlops-platform/pipeline-orchestrator:latest"
    k8s_service_account: str | None = None
    k8s_api_url: str = Field(
        default="https://kubernetes.default.svc", description="the cluster API the executor talks to"
    )
    k8s_ttl_seconds_after_finished: int = 3600

    alert_webhook_token: SecretStr | None = Field(
        default=None,
        description="the bearer token AlertManager sends to POST /api/triggers/alertmanager; when set, "
        "that route accepts this token only; unset, it needs an editor API key like any write (open "
        "only when no API keys are configured)",
    )

    # peers (the names every service and client reads: MLOPS_*_URL, MLOPS_API_KEY)
    model_registry_url: str = Field(
        default="http://127.0.0.1:8000",
        max_length=2048,
        description="MLOPS_MODEL_REGISTRY_URL: where retraining policies read model monitoring",
    )
    api_key: str | None = Field(
        default=None, description="the key the orchestrator presents to its peers (MLOPS_API_KEY)", repr=False
    )
    peer_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    peer_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="per socket read")
    retraining_poll_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="how often due retraining policies are looked for"
    )
    retraining_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="a policy evaluation not finished within this long (its replica died) is free again",
    )

    max_runs_per_page: int = 200
    log_chunk_bytes: int = 1024 * 1024

    @field_validator("alert_webhook_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        token = value.get_secret_value()
        if token.lower() in PLACEHOLDER_SECRETS or len(token) < 16:
            raise ValueError(
                "the alert webhook token looks like a placeholder: use at least 16 random characters "
                "(e.g. `openssl rand -hex 24`)"
            )
        return value

    @property
    def log_dir(self) -> Path:
        return (self.service_dir / "logs").resolve()

    @property
    def callback_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://127.0.0.1:{self.port or self.default_port}"
