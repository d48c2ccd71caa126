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
    schema_cache_seconds: float = Field(
        default=1.0, description="how long a replica may serve with a cached feature-set schema"
    )
    max_entities_per_request: int = 10_000
    max_historical_rows: int = 5_000_000

    @property
    def online_sqlite_path(self) -> str:
        return str((self.service_dir / "online.db").resolve())
