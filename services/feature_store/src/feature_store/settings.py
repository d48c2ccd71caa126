from typing import ClassVar, Literal

from mlops_kit.settings import ServiceSettings
from pydantic import Field


class FeatureStoreSettings(ServiceSettings):
    service_name: ClassVar[str] = "feature_store"
    default_port: ClassVar[int] = 8002

    online_store: Literal["sqlite", "redis"] = Field(
        default="sqlite", description="sqlite: a file under the data dir (embedded); redis: MLOPS_REDIS_URL"
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = Field(default="fs", description="namespace of every online-store key in Redis")
    online_read_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="a serving read answers within this, else 503 ONLINE_STORE_UNAVAILABLE",
    )
    redis_socket_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="every other Redis call (push, materialization, deletes): per socket read",
    )
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0)
    schema_cache_seconds: float = Field(
        default=1.0, description="how long a replica may serve with a cached feature-set schema"
    )
    max_entities_per_request: int = 10_000
    max_historical_rows: int = 5_000_000

    @property
    def online_sqlite_path(self) -> str:
        return str((self.service_dir / "online.db").resolve())
