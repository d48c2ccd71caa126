"""Test helpers that start or locate REAL backends: PostgreSQL, Redis, an S3 server, service processes."""

from mlops_kit.testing.backends import (
    S3Server,
    free_port,
    fresh_postgres_database,
    postgres_server_url,
    redis_url,
    start_s3_server,
    wait_until,
)
from mlops_kit.testing.process import ServiceProcess
from mlops_kit.testing.race import BACKENDS, race, service_on
from mlops_kit.testing.reset import empty_tables
from mlops_kit.testing.servers import (
    PrivateServer,
    frozen_process,
    start_postgres_server,
    start_redis_server,
)

__all__ = [
    "BACKENDS",
    "PrivateServer",
    "S3Server",
    "ServiceProcess",
    "empty_tables",
    "free_port",
    "fresh_postgres_database",
    "frozen_process",
    "postgres_server_url",
    "race",
    "redis_url",
    "service_on",
    "start_postgres_server",
    "start_redis_server",
    "start_s3_server",
    "wait_until",
]
