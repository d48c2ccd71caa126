"""Settings shared by every service, read from ``MLOPS_<SERVICE>_*`` then ``MLOPS_*`` env vars."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mlops_kit.auth import ApiKey, parse_api_keys
from mlops_kit.db import DbTimeouts

log = logging.getLogger("mlops.settings")

PLACEHOLDER_SECRETS = {"changeme", "change-me", "change_me", "secret", "password", "admin", "test"}


class ServiceSettings(BaseSettings):
    """Base settings. A subclass sets ``service_name`` and ``default_port``.

    Every field can be set per service (``MLOPS_MODEL_REGISTRY_DATABASE_URL``) or for all
    services at once (``MLOPS_DATABASE_URL``); the per-service variable wins.
    """

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    model_config = SettingsConfigDict(extra="ignore")

    host: str | None = None
    port: int | None = None
    data_dir: Path = Path(".mlops")
    database_url: str | None = None
    migrate_on_start: bool = True
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="server processes on the port (uvicorn workers), for services that opt in; "
        "each is a replica as far as the data is concerned",
    )
    db_pool_size: int = 10
    db_connect_timeout_seconds: float = Field(
        default=5.0, ge=0, description="PostgreSQL connection handshake limit (psycopg's minimum is 2 s)"
    )
    db_statement_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL statement_timeout; a server that does not answer at all is given up "
        "on 1 s later (the request answers 503 DATABASE_UNAVAILABLE)",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0, gt=0, description="wait for a free pooled connection"
    )
    ready_timeout_seconds: float = Field(
        default=1.0, gt=0, description="each `/ready` check's limit: a slower backend is reported down"
    )

    artifact_store: Literal["local", "s3"] = "local"
    artifact_dir: Path | None = None
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "mlops-artifacts"
    s3_secure: bool = False
    s3_region: str | None = None
    s3_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    s3_read_timeout_seconds: float = Field(default=30.0, gt=0, description="per socket read, not per object")
    s3_max_retries: int = Field(default=2, ge=0, le=10, description="retries of a failed S3 call")

    api_keys: str = Field(default="", description="comma-separated role:name:key entries")
    # /docs, /redoc, /openapi.json without a key even when keys are configured (see SETTINGS.md)
    docs_public: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    max_upload_bytes: int = 5 * 1024**3
    max_json_bytes: int = 16 * 1024**2
    request_timeout_seconds: float = 60.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        prefix = f"MLOPS_{cls.service_name.upper()}_"
        env_file = os.environ.get("MLOPS_ENV_FILE", ".env") or None
        return (
            init_settings,
            EnvSettingsSource(settings_cls, env_prefix=prefix, case_sensitive=False),
            EnvSettingsSource(settings_cls, env_prefix="MLOPS_", case_sensitive=False),
            DotEnvSettingsSource(settings_cls, env_file=env_file, env_prefix=prefix),
            DotEnvSettingsSource(settings_cls, env_file=env_file, env_prefix="MLOPS_"),
        )

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _check_secrets(self) -> ServiceSettings:
        for key in self.parsed_api_keys:
            if key.plaintext is not None and (
                key.plaintext.lower() in PLACEHOLDER_SECRETS or len(key.plaintext) < 16
            ):
                raise ValueError(
                    f"API key {key.name!r} looks like a placeholder: use at least 16 random "
                    "characters (e.g. `openssl rand -hex 24`) or give its sha256 as sha256:<hex>"
                )
        if self.artifact_store == "s3" and self.s3_secret_key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError("MLOPS_S3_SECRET_KEY is a placeholder; set the real secret")
        return self

    @property
    def db_timeouts(self) -> DbTimeouts:
        return DbTimeouts(
            connect=self.db_connect_timeout_seconds,
            statement=self.db_statement_timeout_seconds,
            pool=self.db_pool_timeout_seconds,
        )

    @property
    def parsed_api_keys(self) -> list[ApiKey]:
        return parse_api_keys(self.api_keys)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys.strip())

    @property
    def service_dir(self) -> Path:
        return self.data_dir / self.service_name

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.service_dir / 'metadata.db').resolve()}"

    @property
    def resolved_artifact_dir(self) -> Path:
        return (self.artifact_dir or self.service_dir / "artifacts").resolve()

    @property
    def bind_host(self) -> str:
        if self.host:
            return self.host
        return "0.0.0.0" if self.auth_enabled else "127.0.0.1"

    @property
    def bind_port(self) -> int:
        return self.port or self.default_port

    def public_dict(self) -> dict[str, Any]:
        hidden = {"api_keys", "s3_secret_key"}
        return {k: ("***" if k in hidden and v else v) for k, v in self.model_dump().items()}
