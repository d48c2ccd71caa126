from typing import ClassVar

from mlops_kit.settings import ServiceSettings
from pydantic import Field


class ServingSettings(ServiceSettings):
    service_name: ClassVar[str] = "model_serving"
    default_port: ClassVar[int] = 8080

    # peers (the names every service and client reads: MLOPS_*_URL, MLOPS_API_KEY)
    model_registry_url: str = Field(default="http://127.0.0.1:8000", description="MLOPS_MODEL_REGISTRY_URL")
    feature_store_url: str = Field(default="http://127.0.0.1:8002", description="MLOPS_FEATURE_STORE_URL")
    ab_testing_url: str = Field(default="http://127.0.0.1:8090", description="MLOPS_AB_TESTING_URL")
    api_key: str | None = Field(
        default=None, description="the key serving presents to its peers (MLOPS_API_KEY)", repr=False
    )
    peer_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    peer_read_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="per socket read")
    feature_timeout_seconds: float = Field(
        default=0.5, gt=0, le=30, description="the whole online-feature lookup of one prediction request"
    )

    # models and their upkeep
    model_cache_dir: str | None = Field(
        default=None, description="downloaded artifacts (default: <data_dir>/model_serving/models)"
    )
    watch_seconds: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="how often the registry is asked whether an alias moved (one "
        "conditional request for every deployment, answered 304 when nothing moved)",
    )
    resync_seconds: float = Field(
        default=2.0,
        gt=0,
        le=86_400,
        description="how often deployments (other replicas' changes) and A/B experiments (a canary's "
        "stage, promotion or rollback) are re-read: one database query and one A/B request per pass",
    )
    load_retry_max_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="the longest back-off between two attempts to load a model"
    )
    deploy_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="how long creating or changing a deployment waits for its first load (the answer's "
        "status then says READY or FAILED; a bigger model keeps loading in the background)",
    )
    default_deployment: str | None = Field(
        default=None, description="the deployment `POST /predict` serves (default: the oldest one)"
    )

    # prediction log (model monitoring) and exposures (A/B testing)
    log_queue_size: int = Field(
        default=100_000, ge=100, le=10_000_000, description="predictions waiting to be sent"
    )
    log_batch_size: int = Field(default=1000, ge=1, le=10_000)
    log_flush_seconds: float = Field(default=1.0, gt=0, le=300)
    shadow_queue_size: int = Field(default=10_000, ge=10, le=1_000_000)
