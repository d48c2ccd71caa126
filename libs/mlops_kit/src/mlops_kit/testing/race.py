"""Real concurrency for race tests: N threads, each with its own HTTP client, released at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from mlops_kit.testing.backends import fresh_postgres_database
from mlops_kit.testing.process import ServiceProcess

BACKENDS = ("sqlite", "postgres")


# A deadline, not a wait: a service with MLOPS_<SERVICE>_WORKERS=2 imports its app three times
# (the supervisor and each worker; model_registry.app alone is ~11 s of CPU on the 2-core CI
# machine), beside another xdist worker's load; 60 s was missed there.
STARTUP_SECONDS = 180.0


@contextmanager
def service_on(module: str, backend: str, tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """The service `module` as a real process on SQLite (a file under `tmp`) or on a fresh
    PostgreSQL database; yields its URL."""
    base = {"MLOPS_DATA_DIR": str(tmp), **(env or {})}
    if backend == "sqlite":
        with ServiceProcess(module, env=base, tmp=tmp, startup_timeout=STARTUP_SECONDS) as service:
            yield service.url
        return
    with fresh_postgres_database(module.replace("_", "")[:12]) as url:
        pg_env = {**base, "MLOPS_DATABASE_URL": url}
        with ServiceProcess(module, env=pg_env, tmp=tmp, startup_timeout=STARTUP_SECONDS) as service:
            yield service.url


def race(
    url: str, work: Callable[[httpx.Client, int], httpx.Response], clients: int = 10
) -> list[httpx.Response]:
    """Run ``work(client, i)`` for i in range(clients), all starting together behind a barrier;
    the responses in order of i. A thread's exception is raised here."""
    barrier = threading.Barrier(clients)
    responses: list[httpx.Response | None] = [None] * clients
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with httpx.Client(base_url=url, timeout=30) as client:
                barrier.wait(timeout=30)
                responses[i] = work(client, i)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [r for r in responses if r is not None]
